#!/usr/bin/env bash
# The main job: the whole system on simulated Avalo traffic (store, Prometheus, SLO and alert
# evaluation, the admin dashboard), on compressed time: a week of history, then 75 s of live
# traffic at 60x with an incident in the middle third. Ctrl-C stops it cleanly.
#   bash scripts/demo.sh --duration 30 --speed 120     shorter, faster
#   bash scripts/demo.sh --port 0 --dashboard-port 0   free ports
#   bash scripts/demo.sh --help                        every option
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/avalo-otel demo "$@"
