#!/usr/bin/env bash
# The whole test suite, real servers included (the tests start and stop them).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
exec .venv/bin/python -m pytest -ra "$@"
