"""An app for ``opentelemetry-instrument`` with the store exporters: it never calls ``configure()``.

``OTEL_TRACES_EXPORTER=otlp,firestore OTEL_LOGS_EXPORTER=firestore`` (or ``sqlite``) in its
environment decide where its telemetry goes; it records through avalo-otel's API and the plain
OpenTelemetry API, then exits normally, so what reaches the store was flushed at exit.
"""

from __future__ import annotations

from opentelemetry import trace

import avalo_otel


def main() -> None:
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span("third-party"):
        pass
    with avalo_otel.time_operation("chat", "chat.send", actor_id="user-42",
                                   metadata={"recipientEmail": "jane.doe@example.com", "length": 12}):
        avalo_otel.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
    try:
        with avalo_otel.time_operation("wallet", "wallet.spend", actor_id="user-42"):
            raise avalo_otel.AvaloError("INSUFFICIENT_FUNDS")
    except avalo_otel.AvaloError:
        pass
    avalo_otel.log_telemetry("support", "support.ticket_create", actor_id="user-42",
                             metadata={"details": "call me on +44 20 7946 0018"})
    print("store_instrumented: done", flush=True)


if __name__ == "__main__":
    main()
