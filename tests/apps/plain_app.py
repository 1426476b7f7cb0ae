"""A plain app for ``opentelemetry-instrument``: it never calls ``avalo_otel.configure()``.

It records through avalo-otel's API and through the plain OpenTelemetry API, then exits
normally, so whatever reaches a backend was set up by our distro/configurator and flushed at exit.
"""

from __future__ import annotations

from opentelemetry import trace

import avalo_otel


def main() -> None:
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span("third-party"):
        pass
    with avalo_otel.time_operation("chat", "chat.send", actor_id="user-42"):
        avalo_otel.inc_counter("chat_messages_sent_total", {"domain": "chat", "messageType": "text"})
    with avalo_otel.time_operation("wallet", "wallet.spend", actor_id="user-42"):
        pass
    avalo_otel.log_telemetry("support", "support.ticket_create", actor_id="user-42")
    print("plain_app: done", flush=True)


if __name__ == "__main__":
    main()
