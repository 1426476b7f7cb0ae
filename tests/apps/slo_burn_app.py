"""An app burning its error budget through the public API, for the Prometheus alerting end-to-end test.

``python slo_burn_app.py PORT``: ``configure(metrics_exporters="prometheus", prometheus_port=PORT)``
(0: the OS picks), prints ``{"metrics_url": ...}`` on one line, then until it is terminated sends
``chat.send`` traffic every 50 ms: 2 successes, 1 client error (VALIDATION_FAILED: good for the
SLO) and 1 server error (INTERNAL) — a 25% bad-event ratio, 50x the 0.5% budget. After one second
it records a single failed panic press (a zero-tolerance indicator).
"""

from __future__ import annotations

import json
import signal
import sys
import time

import avalo_otel


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    handle = avalo_otel.configure(
        metrics_exporters="prometheus", prometheus_port=port, prometheus_host="127.0.0.1",
        service_name="slo-burn-app", pseudonym_key="e2e", environ={},
    )
    stop = False

    def on_term(*_args: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    print(json.dumps({"metrics_url": handle.prometheus_url}), flush=True)
    started, panicked = time.monotonic(), False
    while not stop:
        for _ in range(2):
            avalo_otel.log_telemetry("chat", "chat.send", actor_id="user-1", success=True, latency_ms=40)
        avalo_otel.log_error("chat", "chat.send", "VALIDATION_FAILED", actor_id="user-2", latency_ms=20)
        avalo_otel.log_error("chat", "chat.send", "INTERNAL", actor_id="user-3", latency_ms=60)
        if not panicked and time.monotonic() - started > 1.0:
            avalo_otel.log_error("safety", "safety.panic_press", "INTERNAL", actor_id="user-4", latency_ms=80)
            panicked = True
        time.sleep(0.05)
    handle.shutdown()


if __name__ == "__main__":
    main()
