"""An app exporting all three signals over OTLP to ENDPOINT, which says ``ready`` and sleeps until killed.

    python otlp_sigterm.py grpc|http/protobuf ENDPOINT N [exit]

It records N operations (a span, an event and metrics each), waits a moment so the exporters
are inside their retry loop when the endpoint is down, says ``ready`` and sleeps. It installs no
SIGTERM handler of its own: avalo-otel's flush-on-SIGTERM shuts telemetry down, within its
default deadline, and the process then dies by the signal. With ``exit`` it returns after
``ready`` instead, as an app whose server (gunicorn, uvicorn) handled SIGTERM does: telemetry is
shut down at interpreter exit.
"""

from __future__ import annotations

import sys
import time

import avalo_otel


def main() -> None:
    protocol, endpoint, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    avalo_otel.configure(
        otlp_protocol=protocol, otlp_endpoint=endpoint, traces_exporters="otlp", logs_exporters="otlp",
        metrics_exporters="otlp", metric_export_interval_ms=500, traces_schedule_delay_ms=100,
        logs_schedule_delay_ms=100,
    )
    for seq in range(count):
        with avalo_otel.time_operation("chat", "chat.send", metadata={"seq": seq}):
            pass
    time.sleep(1.5)
    print("ready", flush=True)
    if sys.argv[4:] == ["exit"]:
        return
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
