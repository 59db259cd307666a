#!/usr/bin/env bash
# Start Mobilend on the embedded SQLite default: install, migrate, serve on 127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
.venv/bin/mobilend db upgrade
.venv/bin/mobilend model init >/dev/null   # trains the default credit models once (~15 s)
.venv/bin/mobilend collateral catalog-import --seed >/dev/null   # the phone catalog (updates in place)
exec .venv/bin/mobilend serve "$@"
