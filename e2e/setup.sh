#!/usr/bin/env bash
# Installs what the Valet e2e suite needs, idempotently (a second run takes a second or two):
#   - chromium from Debian (only if /usr/bin/chromium is missing; never a downloaded browser build)
#   - e2e/node/node_modules from the committed package-lock.json (npm ci)
#   - the Python venv e2e/.venv with the pinned e2e/python/requirements.txt
# Expects: Debian, root (or sudo), Node 20+ with npm, Python 3.11 with venv/pip.
set -euo pipefail

E2E="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
log() { printf '[e2e setup] %s\n' "$*"; }

sha() { sha256sum "$@" | sha256sum | cut -c1-16; }

# --- chromium -------------------------------------------------------------------------------
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  log "installing chromium from Debian"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends chromium
fi
[ -x "$CHROMIUM" ] || { log "chromium not found at $CHROMIUM"; exit 1; }

# --- node -----------------------------------------------------------------------------------
NODE_DIR="$E2E/node"
node_stamp="$(sha "$NODE_DIR/package-lock.json" "$NODE_DIR/package.json")-$(node --version)"
if [ "$(cat "$NODE_DIR/node_modules/.valet-e2e-stamp" 2>/dev/null || true)" != "$node_stamp" ]; then
  log "npm ci in e2e/node"
  (cd "$NODE_DIR" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
  echo "$node_stamp" > "$NODE_DIR/node_modules/.valet-e2e-stamp"
fi
# jsforce >= 3.10.19 and @salesforce/core 9 only load on Node 20 with the undici 7 override; fail early if they do not.
(cd "$NODE_DIR" && node -e "require('jsforce'); require('@salesforce/core'); require('playwright-core')") \
  || { log "jsforce/@salesforce/core/playwright-core do not load with $(node --version)"; exit 1; }

# --- python ---------------------------------------------------------------------------------
VENV="$E2E/.venv"
PYTHON="${PYTHON:-python3}"
py_stamp="$(sha "$E2E/python/requirements.txt")-$("$PYTHON" --version 2>&1 | tr -d ' ')"
if [ "$(cat "$VENV/.valet-e2e-stamp" 2>/dev/null || true)" != "$py_stamp" ]; then
  log "creating $VENV and installing e2e/python/requirements.txt"
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  timeout 600 "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$E2E/python/requirements.txt"
  echo "$py_stamp" > "$VENV/.valet-e2e-stamp"
fi

mkdir -p "$E2E/artifacts"
log "ready ($("$CHROMIUM" --version 2>/dev/null | head -1); node $(node --version); $("$VENV/bin/python" --version))"
