#!/usr/bin/env bash
# Run the whole test suite: lint, type checks, unit, integration (SQLite and PostgreSQL), e2e.
# PostgreSQL: MOBILEND_TEST_PG_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres).
# When CI=true PostgreSQL is required: its tests fail instead of being skipped when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
bash scripts/system-deps.sh   # a Chinese font for the OCR tests (Debian package)
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest -n 2 "$@"
