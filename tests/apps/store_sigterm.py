"""An app that records telemetry into a store, says ``ready`` and sleeps until it is killed.

    python store_sigterm.py sqlite|firestore N [STORE_PATH]

It configures avalo-otel itself (settings from the environment plus the store exporters for all
three signals) and installs no SIGTERM handler of its own, so avalo-otel's flush-on-SIGTERM is
what must get the N events (and their spans) into the store before the process dies by the signal.
For ``firestore`` the environment names the emulator and project (``FIRESTORE_EMULATOR_HOST``,
``AVALO_OTEL_FIRESTORE_PROJECT``). Keep the batch delays long (``OTEL_BLRP_SCHEDULE_DELAY``) so
nothing is exported before the signal.
"""

from __future__ import annotations

import sys
import time

import avalo_otel


def main() -> None:
    kind, count = sys.argv[1], int(sys.argv[2])
    settings: dict[str, object] = {
        "traces_exporters": kind, "logs_exporters": kind, "metrics_exporters": kind,
        "metric_export_interval_ms": 600_000,
    }
    if kind == "sqlite":
        settings["store_path"] = sys.argv[3]
    avalo_otel.configure(**settings)
    for seq in range(count):
        avalo_otel.log_telemetry("chat", "chat.send", actor_id="user-42", metadata={"seq": seq})
    with avalo_otel.time_operation("wallet", "wallet.spend", metadata={"seq": count}):
        pass
    print("ready", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
