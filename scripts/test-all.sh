#!/usr/bin/env bash
# Runs every test Valet has, on a fresh machine that has Rust, Python, Node and PostgreSQL:
#   0. the gates: the tree is rustfmt-formatted and clippy-clean, every dependency's license is
#      permissive (scripts/deps-check.py);
#   1. the workspace's unit and integration tests (each integration test runs on SQLite and on
#      PostgreSQL, in a fresh database file or schema of its own);
#   2. the end-to-end suite (e2e/run.sh): real jsforce, Authlib and openidconnect clients driving
#      a running `valet serve` through the real pages in headless Chromium, on both backends.
# Set VALET_TEST_DATABASE_URL to use another PostgreSQL (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# PostgreSQL must be up: start the local cluster if it is installed but stopped.
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

echo "== gates: rustfmt and clippy (warnings are errors)"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
python3 scripts/deps-check.py

echo "== cargo test (workspace, SQLite and PostgreSQL)"
mkdir -p target
cargo test --workspace --locked 2>&1 | tee target/test.log
cargo build --locked -p valet --bin valet
grep -E "^test result:" target/test.log | awk '{p+=$4; f+=$6} END {print "cargo:", p, "passed,", f, "failed"}'


echo "== admin API: OpenAPI validation and schema-driven fuzzing (no 5xx)"
SKIP_BUILD=1 FUZZ_MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-25}" FUZZ_SEED="${FUZZ_SEED:-1}" bash scripts/admin-api-fuzz.sh

echo "== benchmark smoke (bench/run.sh --smoke: every scenario briefly; its numbers mean nothing)" && VALET_BIN=target/debug/valet bash bench/run.sh --smoke

echo "== end-to-end (real clients, real browser)"
VALET_E2E_BACKENDS="${VALET_E2E_BACKENDS:-sqlite postgres}" bash e2e/run.sh
