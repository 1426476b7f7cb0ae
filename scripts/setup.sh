#!/usr/bin/env bash
# Installs what avalo-otel needs on a fresh machine of this kind; safe to run again.
#   scripts/setup.sh            the package in .venv (for the demo)
#   scripts/setup.sh --test     plus the test extras and the real servers the tests run
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=".venv/.installed-$(cat pyproject.toml exporters/firestore/pyproject.toml | sha1sum | cut -c1-12)${1:-}"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  # The demo serves the dashboard too: its web dependencies are the optional `dashboard` extra.
  if [ "${1:-}" = "--test" ]; then extras=".[test,dashboard]"; else extras=".[dashboard]"; fi
  .venv/bin/python -m pip install -q -e "$extras" 2>&1 | grep -v '^WARNING: Location' || true
  if [ "${1:-}" = "--test" ]; then
    # The Firestore store is its own distribution; the tests run it against the emulator.
    .venv/bin/python -m pip install -q -e exporters/firestore 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -c "import avalo_otel_exporter_firestore"
  fi
  # Fail here, loudly, if the install did not work (pip's own errors are filtered above).
  .venv/bin/python -c "import avalo_otel, starlette, jinja2, uvicorn"
  if [ "${1:-}" = "--test" ]; then .venv/bin/python -c "import playwright.sync_api"; fi
  touch "$stamp"
fi
if [ "${1:-}" = "--test" ]; then
  need=()
  command -v prometheus >/dev/null || need+=(prometheus)
  command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
  # The dashboard's browser tests drive Debian's Chromium through Playwright (never `playwright install`).
  command -v chromium >/dev/null || need+=(chromium)
  if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  # Google's Firestore emulator ships on this machine image (it is not in Debian): say so loudly.
  jar=/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar
  if [ ! -f "$jar" ] || ! command -v java >/dev/null; then
    echo "setup: the Firestore emulator ($jar) or java is missing; the storage tests need it" >&2
    exit 1
  fi
  # The tests run their own Prometheus and Alertmanager on free loopback ports and stop them by
  # PID: a Prometheus already running on this machine (the user's own) is never touched.
fi
