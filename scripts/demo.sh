#!/usr/bin/env bash
# The main job: simulated Avalo traffic through the public API, exported live.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/avalo-otel demo "$@"
