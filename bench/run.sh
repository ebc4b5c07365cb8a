#!/usr/bin/env bash
# Valet's benchmark suite (issue #5): one command.
#   bash bench/run.sh            full run: builds Valet (release) and the driver, installs the peer,
#                                3 rounds × 6 s per scenario and server, then the scale phase
#                                (1M refresh tokens + 1M Accounts loaded by bench/scale.py, start-up
#                                time, DB size, 2 more rounds): ≈ 15–22 minutes on 2 vCPUs
#   bash bench/run.sh --smoke    seconds-long proof that everything runs (uses whatever valet
#                                binary is already built: release if present, else debug); no scale phase
# Any other arguments go to bench/bench.py (--help lists them: --rounds, --duration, --scenarios,
# --backends sqlite,postgres, --no-peer, --fixed-rate, --scale JSON, --no-scale, --scale-rounds,
# ...). Results: bench/results/*.json and *.md.
# Needs: cargo, node + npm, python3, and PostgreSQL on 127.0.0.1:5432 (trust auth) for the
# postgres backend (otherwise pass --backends sqlite). Loopback only; every run is bounded in time.
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
export NO_PROXY="127.0.0.1,localhost" no_proxy="127.0.0.1,localhost"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

SMOKE=""
for a in "$@"; do [ "$a" = "--smoke" ] && SMOKE=1; done
EXTRA=()

if [ -n "$SMOKE" ]; then
  VALET="${VALET_BIN:-}"
  if [ -z "$VALET" ]; then
    if [ -x "$ROOT/target/release/valet" ]; then VALET="$ROOT/target/release/valet"; else VALET="$ROOT/target/debug/valet"; fi
  fi
  [ -x "$VALET" ] || (cd "$ROOT" && cargo build --locked -p valet --bin valet)
else
  echo "[bench] cargo build --release -p valet" >&2
  (cd "$ROOT" && cargo build --release --locked -p valet --bin valet)
  VALET="${VALET_BIN:-$ROOT/target/release/valet}"
fi
EXTRA+=(--valet "$VALET")

DRIVER_REL="$BENCH/driver/target/release/valet-bench"
if [ -n "$SMOKE" ] && [ ! -x "$DRIVER_REL" ]; then
  # The smoke only proves that the scripts run: a debug driver compiles in half the time.
  echo "[bench] building the driver (debug; bench/driver is a cargo project of its own)" >&2
  (cd "$BENCH/driver" && cargo build --locked -q)
  EXTRA+=(--driver "$BENCH/driver/target/debug/valet-bench")
else
  echo "[bench] building the driver (release; bench/driver is a cargo project of its own)" >&2
  (cd "$BENCH/driver" && cargo build --release --locked -q)
  EXTRA+=(--driver "$DRIVER_REL")
fi

if [ ! -d "$BENCH/peer/node_modules/oidc-provider" ]; then
  echo "[bench] npm ci (node-oidc-provider)" >&2
  (cd "$BENCH/peer" && npm ci --no-audit --no-fund --loglevel=error)
fi

# PostgreSQL must be up for the postgres backend: start the local cluster if installed but stopped.
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi

exec timeout 1800 python3 "$BENCH/bench.py" "${EXTRA[@]}" "$@"
