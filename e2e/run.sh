#!/usr/bin/env bash
# The one command for Valet's end-to-end suite:
#   bash e2e/run.sh
# For each backend in ${VALET_E2E_BACKENDS:-sqlite} (sqlite, postgres) it starts a fresh
# `valet serve` (plus, for simple-salesforce, a second `valet serve --tls-self-signed` on the same
# data dir and database), creates a user and the client apps with the valet CLI, and runs:
#   jsforce            e2e/node/jsforce.test.js      (node --test)
#   jsforce-rest       e2e/node/jsforce-rest.test.js (node --test; the REST data API)
#   sf-core            e2e/node/sfcore.test.js       (node --test; @salesforce/core)
#   authlib            e2e/python/test_authlib.py, test_authlib_grants.py (pytest)
#   simple-salesforce  e2e/python/test_simple_salesforce.py, test_simple_salesforce_rest.py (pytest, over TLS)
#   oidc-rs            target/debug/valet-e2e-oidc   (Rust openidconnect)
# Ends with the line "N passed, N failed" and exits non-zero if anything failed.
#
# Env knobs: VALET_E2E_BACKENDS="sqlite postgres", VALET_E2E_PG (default postgres://postgres@127.0.0.1:5432),
#            VALET_E2E_SUITES="jsforce jsforce-rest sf-core authlib simple-salesforce oidc-rs", VALET_E2E_SKIP_SETUP=1, VALET_E2E_SKIP_BUILD=1,
#            VALET_E2E_NODE (node binary), VALET_E2E_KEEP=1 (keep data dirs),
#            VALET_BIN (valet binary, default target/debug/valet).
set -uo pipefail

E2E="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$E2E/.." && pwd)"
ART="$E2E/artifacts"
mkdir -p "$ART"
rm -f "$ART"/*.png "$ART"/*.log "$ART"/*.tap "$ART"/*.xml
BACKENDS="${VALET_E2E_BACKENDS:-sqlite}"
SUITES="${VALET_E2E_SUITES:-jsforce jsforce-rest sf-core authlib simple-salesforce oidc-rs}"
PG="${VALET_E2E_PG:-postgres://postgres@127.0.0.1:5432}"
NODE="${VALET_E2E_NODE:-node}"
PY="$E2E/.venv/bin/python"
VALET="${VALET_BIN:-$ROOT/target/debug/valet}"
OIDC_RS="$ROOT/target/debug/valet-e2e-oidc"
REDIRECT_URI="http://localhost:1717/OauthRedirect"
export VALET_E2E_NODE="$NODE" VALET_E2E_ARTIFACTS="$ART" VALET_E2E_REDIRECT_URI="$REDIRECT_URI"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

PASSED=0
FAILED=0
RESULTS=()
log() { printf '[e2e] %s\n' "$*"; }
record() { # record <name> <passed> <failed>
  PASSED=$((PASSED + $2)); FAILED=$((FAILED + $3))
  RESULTS+=("$(printf '%-28s %3d passed %3d failed' "$1" "$2" "$3")")
}
finish() {
  echo
  log "summary"
  for r in "${RESULTS[@]}"; do echo "  $r"; done
  echo "$PASSED passed, $FAILED failed"
  if [ "$FAILED" -gt 0 ] || [ "$PASSED" -eq 0 ]; then exit 1; fi
  exit 0
}

# --- cleanup of whatever the current backend left running ------------------------------------
SERVER_PID=""
TLS_PID=""
DATA_DIR=""
PG_DB=""
RUN_DIR=""
stop_pid() { # stop_pid <pid>: TERM, up to 5 s, then KILL
  local pid="$1"
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
}
cleanup_backend() {
  stop_pid "$TLS_PID"; TLS_PID=""
  stop_pid "$SERVER_PID"; SERVER_PID=""
  if [ -n "$PG_DB" ]; then
    timeout 30 psql "$PG/postgres" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 \
      || log "warning: could not drop database $PG_DB"
    PG_DB=""
  fi
  if [ -n "$DATA_DIR" ] && [ -z "${VALET_E2E_KEEP:-}" ]; then rm -rf "$DATA_DIR"; fi
  DATA_DIR=""
}
cleanup_all() {
  cleanup_backend
  if [ -n "$RUN_DIR" ]; then rm -rf "$RUN_DIR"; fi
}
trap 'cleanup_all' EXIT
trap 'log "interrupted"; cleanup_all; exit 130' INT TERM

# --- setup and build -------------------------------------------------------------------------
if [ -z "${VALET_E2E_SKIP_SETUP:-}" ]; then
  if ! bash "$E2E/setup.sh"; then record "setup" 0 1; finish; fi
fi
if [ -z "${VALET_E2E_SKIP_BUILD:-}" ]; then
  log "cargo build -p valet -p valet-e2e-oidc"
  if ! (cd "$ROOT" && timeout 1800 cargo build -p valet -p valet-e2e-oidc 2>&1 | tail -n 30 | tee "$ART/build.log" >&2); then
    record "build" 0 1; finish
  fi
fi
for bin in "$VALET" "$OIDC_RS"; do
  [ -x "$bin" ] || { log "missing $bin"; record "build" 0 1; finish; }
done
# Run a private copy of valet: others may rebuild target/debug/valet while the suites run, and
# the servers and the CLI must agree on the database format.
RUN_DIR="$(mktemp -d -t valet-e2e-run-XXXXXX)"
cp "$VALET" "$RUN_DIR/valet" && VALET="$RUN_DIR/valet" || { log "cannot copy $VALET"; record "build" 0 1; finish; }

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
rand_hex() { "$PY" -c "import secrets; print(secrets.token_hex($1))"; }
json_get() { "$PY" -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print("" if v is None else v)' "$1"; }

# valet <subcommand...> with the backend's database arguments appended
valet_cli() { timeout 60 "$VALET" "$@" "${DB_ARGS[@]}"; }

create_app() { # create_app <name> [extra args...] -> JSON on stdout
  local name="$1"; shift
  valet_cli app create --name "$name" --callback-url "$REDIRECT_URI" --json "$@"
}

# set_policy <consumer key> <JSON object>: merges it into the app policy (valet app update
# --policy-json); a string value "@cert:NAME" becomes the PEM certificate $KEY_DIR/NAME.crt
# (made by e2e/python/make_cert.py).
set_policy() {
  local file="$KEY_DIR/policy-$(rand_hex 4).json"
  "$PY" - "$2" "$KEY_DIR" "$file" <<'EOF' || return 1
import json, os, sys
policy, key_dir, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
for k, v in policy.items():
    if isinstance(v, str) and v.startswith("@cert:"):
        policy[k] = open(os.path.join(key_dir, v[6:] + ".crt")).read()
json.dump(policy, open(out, "w"))
EOF
  valet_cli app update "$1" --policy-json "$file" >/dev/null
}

wait_ready() { # wait_ready <pid> <url> [curl args...]: 30 s at most
  local pid="$1" url="$2"; shift 2
  for _ in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then return 1; fi
    if curl -fsS --max-time 2 -o /dev/null "$@" "$url" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

# A second server with TLS (`--tls-self-signed`) on the same data dir and database, for
# simple-salesforce (https only). Sets TLS_BASE and TLS_CA.
start_tls_server() {
  local backend="$1" port log_file="$ART/server-$1-tls.log"
  port="$(free_port)"
  TLS_BASE="https://127.0.0.1:$port"
  TLS_CA="$DATA_DIR/tls/ca.pem"
  log "[$backend] valet serve --tls-self-signed on $TLS_BASE, log $log_file"
  RUST_LOG="${RUST_LOG:-info}" "$VALET" serve --listen "127.0.0.1:$port" --tls-self-signed "${DB_ARGS[@]}" >"$log_file" 2>&1 &
  TLS_PID=$!
  # The CA file appears when the server starts; until then curl fails like a server not yet up.
  if ! wait_ready "$TLS_PID" "$TLS_BASE/readyz" --cacert "$TLS_CA"; then
    log "[$backend] TLS server not ready within 30 s (or exited); log:"; tail -n 50 "$log_file"
    return 1
  fi
}

run_backend() {
  local backend="$1"
  local tag="[$backend]"
  export VALET_E2E_BACKEND="$backend" # screenshot prefix
  DATA_DIR="$(mktemp -d -t valet-e2e-XXXXXX)"
  DB_ARGS=(--data-dir "$DATA_DIR")
  case "$backend" in
    sqlite) ;;
    postgres)
      PG_DB="valet_e2e_$(rand_hex 6)"
      if ! timeout 30 psql "$PG/postgres" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$PG_DB\"" >"$ART/psql-$backend.log" 2>&1; then
        log "$tag cannot create database $PG_DB on $PG:"; cat "$ART/psql-$backend.log"
        PG_DB=""; record "$backend: start" 0 1; return
      fi
      DB_ARGS+=(--database-url "$PG/$PG_DB")
      ;;
    *) log "unknown backend $backend"; record "$backend: start" 0 1; return ;;
  esac

  local port base log_file
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  log_file="$ART/server-$backend.log"
  export VALET_ADMIN_PASSWORD="Adm1n-$(rand_hex 8)"
  log "$tag valet serve on $base (data dir $DATA_DIR), log $log_file"
  RUST_LOG="${RUST_LOG:-info}" "$VALET" serve --listen "127.0.0.1:$port" --public-url "$base" "${DB_ARGS[@]}" >"$log_file" 2>&1 &
  SERVER_PID=$!

  if ! wait_ready "$SERVER_PID" "$base/readyz"; then
    log "$tag server not ready within 30 s (or exited); server log:"
    tail -n 100 "$log_file"
    record "$backend: start" 0 1; cleanup_backend; return
  fi
  log "$tag ready"

  # --- user and apps ---------------------------------------------------------------------------
  local username password out ok=1
  username="e2e-$(rand_hex 4)@valet.test"
  password="E2e-pass-$(rand_hex 8)"
  if ! out="$(printf '%s\n' "$password" | valet_cli user create --username "$username" --password-stdin \
        --email "$username" --first-name E2E --last-name Tester --json 2>"$ART/cli-$backend.log")"; then
    log "$tag valet user create failed:"; cat "$ART/cli-$backend.log"; ok=""
  fi
  local jsf pub authlib rs sfcore ss cc pkj cli_log="$ART/cli-$backend.log"
  KEY_DIR="$DATA_DIR/e2e-keys"
  if [ -n "$ok" ]; then
    jsf="$(create_app "e2e jsforce" --scopes "api refresh_token openid id" 2>>"$cli_log")" || ok=""
    pub="$(create_app "e2e public" --scopes "api refresh_token web openid id" --public 2>>"$cli_log")" || ok=""
    authlib="$(create_app "e2e authlib" --scopes "api refresh_token openid id" 2>>"$cli_log")" || ok=""
    rs="$(create_app "e2e oidc-rs" --scopes "api refresh_token openid id" 2>>"$cli_log")" || ok=""
    # JWT bearer apps (certificate of a key made here with `cryptography`), one per client so
    # that each suite sees the "not approved yet" state first; client credentials (Run-As =
    # the e2e user); private_key_jwt (certificate + client credentials).
    sfcore="$(create_app "e2e sf-core jwt" --scopes "api refresh_token web openid id" 2>>"$cli_log")" || ok=""
    ss="$(create_app "e2e simple-salesforce jwt" --scopes "api refresh_token web openid id" 2>>"$cli_log")" || ok=""
    cc="$(create_app "e2e client credentials" --scopes "api openid id" 2>>"$cli_log")" || ok=""
    pkj="$(create_app "e2e private_key_jwt" --scopes "api refresh_token openid id" 2>>"$cli_log")" || ok=""
    for k in sfcore ss pkj; do
      "$PY" "$E2E/python/make_cert.py" "$KEY_DIR" "$k" >/dev/null 2>>"$cli_log" || ok=""
    done
    if [ -n "$ok" ]; then
      local run_as="\"client_credentials_user\": \"$username\""
      set_policy "$(json_get consumer_key <<<"$sfcore")" '{"enable_jwt_bearer_flow": true, "jwt_certificate_pem": "@cert:sfcore"}' 2>>"$cli_log" || ok=""
      set_policy "$(json_get consumer_key <<<"$ss")" '{"enable_jwt_bearer_flow": true, "jwt_certificate_pem": "@cert:ss"}' 2>>"$cli_log" || ok=""
      set_policy "$(json_get consumer_key <<<"$cc")" "{\"enable_client_credentials_flow\": true, $run_as}" 2>>"$cli_log" || ok=""
      set_policy "$(json_get consumer_key <<<"$pkj")" "{\"enable_client_credentials_flow\": true, $run_as, \"jwt_certificate_pem\": \"@cert:pkj\"}" 2>>"$cli_log" || ok=""
    fi
    [ -n "$ok" ] || { log "$tag valet app create/update failed:"; cat "$cli_log"; }
  fi
  # The server caches apps and users and notices CLI changes within its change poll (250 ms).
  sleep 0.5
  if [ -n "$ok" ]; then
    {
      export VALET_BASE="$base" VALET_E2E_USERNAME="$username" VALET_E2E_PASSWORD="$password"
      export VALET_E2E_CLIENT_ID="$(json_get consumer_key <<<"$jsf")"
      export VALET_E2E_CLIENT_SECRET="$(json_get consumer_secret <<<"$jsf")"
      export VALET_E2E_PUBLIC_CLIENT_IDS="PlatformCLI $(json_get consumer_key <<<"$pub")"
      export VALET_E2E_AUTHLIB_CLIENT_ID="$(json_get consumer_key <<<"$authlib")"
      export VALET_E2E_AUTHLIB_CLIENT_SECRET="$(json_get consumer_secret <<<"$authlib")"
      export VALET_E2E_RS_CLIENT_ID="$(json_get consumer_key <<<"$rs")"
      export VALET_E2E_RS_CLIENT_SECRET="$(json_get consumer_secret <<<"$rs")"
      export VALET_E2E_SFCORE_CLIENT_ID="$(json_get consumer_key <<<"$sfcore")" VALET_E2E_SFCORE_KEY_FILE="$KEY_DIR/sfcore.key"
      export VALET_E2E_SS_CLIENT_ID="$(json_get consumer_key <<<"$ss")" VALET_E2E_SS_KEY_FILE="$KEY_DIR/ss.key"
      export VALET_E2E_CC_CLIENT_ID="$(json_get consumer_key <<<"$cc")"
      export VALET_E2E_CC_CLIENT_SECRET="$(json_get consumer_secret <<<"$cc")"
      export VALET_E2E_PKJ_CLIENT_ID="$(json_get consumer_key <<<"$pkj")" VALET_E2E_PKJ_KEY_FILE="$KEY_DIR/pkj.key"
      export VALET_E2E_DEVICE_CLIENT_ID="PlatformCLI"
    } 2>>"$cli_log" || ok=""
    for v in VALET_E2E_CLIENT_ID VALET_E2E_CLIENT_SECRET VALET_E2E_AUTHLIB_CLIENT_ID VALET_E2E_AUTHLIB_CLIENT_SECRET \
             VALET_E2E_RS_CLIENT_ID VALET_E2E_RS_CLIENT_SECRET VALET_E2E_SFCORE_CLIENT_ID VALET_E2E_SS_CLIENT_ID \
             VALET_E2E_CC_CLIENT_ID VALET_E2E_CC_CLIENT_SECRET VALET_E2E_PKJ_CLIENT_ID; do
      [ -n "${!v:-}" ] || { log "$tag CLI output lacks $v"; ok=""; }
    done
  fi
  if [ -z "$ok" ]; then
    log "$tag CLI output: user=${out:-} jsforce=${jsf:-} public=${pub:-} authlib=${authlib:-} oidc-rs=${rs:-}"
    log "$tag             sf-core=${sfcore:-} simple-salesforce=${ss:-} client-credentials=${cc:-} private_key_jwt=${pkj:-}"
    record "$backend: user/app setup" 0 1; cleanup_backend; return
  fi
  log "$tag user $username; apps created"

  # --- the TLS listener, only when a suite needs it ---------------------------------------------
  TLS_BASE=""; TLS_CA=""
  case " $SUITES " in
    *" simple-salesforce "*)
      if ! start_tls_server "$backend"; then record "$backend: TLS server start" 0 1; fi ;;
  esac

  # --- suites ----------------------------------------------------------------------------------
  for suite in $SUITES; do
    case "$suite" in
      jsforce) run_node_suite "$backend" jsforce jsforce.test.js ;;
      jsforce-rest) run_node_suite "$backend" jsforce-rest jsforce-rest.test.js ;;
      sf-core) run_node_suite "$backend" sf-core sfcore.test.js ;;
      authlib) run_pytest "$backend" authlib test_authlib.py test_authlib_grants.py ;;
      simple-salesforce)
        if [ -n "$TLS_PID" ]; then
          VALET_E2E_TLS_BASE="$TLS_BASE" REQUESTS_CA_BUNDLE="$TLS_CA" run_pytest "$backend" simple-salesforce test_simple_salesforce.py test_simple_salesforce_rest.py
        fi ;;
      oidc-rs) run_oidc_rs "$backend" ;;
      *) log "unknown suite $suite"; record "$backend: $suite" 0 1 ;;
    esac
  done

  local lf
  for lf in "$log_file" ${TLS_PID:+"$ART/server-$backend-tls.log"}; do
    if grep -q 'panicked at' "$lf"; then
      log "$tag the server log $lf shows a panic:"; grep -n -A5 'panicked at' "$lf" | head -n 40
      record "$backend: no panics ($(basename "$lf"))" 0 1
    fi
  done
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "$tag the server died during the run; last log lines:"; tail -n 50 "$log_file"
    record "$backend: server alive" 0 1
  fi
  if [ -n "$TLS_PID" ] && ! kill -0 "$TLS_PID" 2>/dev/null; then
    log "$tag the TLS server died during the run; last log lines:"; tail -n 50 "$ART/server-$backend-tls.log"
    record "$backend: TLS server alive" 0 1
  fi
  cleanup_backend
}

run_node_suite() { # run_node_suite <backend> <suite name> <test file>
  local backend="$1" name="$2" file="$3" tap="$ART/$2-$1.tap" rc
  log "[$backend] $name (node --test $file)"
  (cd "$E2E/node" && VALET_E2E_QUIET=1 timeout 900 "$NODE" --test --test-concurrency=1 \
      --test-reporter=spec --test-reporter-destination=stdout \
      --test-reporter=tap --test-reporter-destination="$tap" "$file")
  rc=$?
  local p f t
  p="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -1)"
  f="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -1)"
  t="$(sed -n 's/^# todo \([0-9]*\)$/\1/p' "$tap" 2>/dev/null | tail -1)"
  p="${p:-0}"; f="${f:-0}"
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  if [ "${t:-0}" -gt 0 ]; then log "[$backend] $name: ${t} todo test(s) not counted (see $tap)"; fi
  record "$backend: $name" "$p" "$f"
}

run_pytest() { # run_pytest <backend> <suite name> <test files...>
  local backend="$1" name="$2" xml="$ART/pytest-$2-$1.xml" rc
  shift 2
  log "[$backend] $name (pytest $*)"
  (cd "$E2E/python" && timeout 900 "$PY" -m pytest -v -p no:cacheprovider --junitxml="$xml" "$@")
  rc=$?
  local counts p f
  counts="$("$PY" - "$xml" <<'EOF' 2>/dev/null
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = r if r.tag == "testsuite" else r.find("testsuite")
t, f, e, k = (int(s.get(a, 0)) for a in ("tests", "failures", "errors", "skipped"))
print(t - f - e - k, f + e)
EOF
)"
  read -r p f <<<"${counts:-0 0}"
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  record "$backend: $name" "$p" "$f"
}

run_oidc_rs() {
  local backend="$1"
  log "[$backend] oidc-rs (Rust openidconnect)"
  if timeout 300 "$OIDC_RS"; then record "$backend: oidc-rs" 1 0; else record "$backend: oidc-rs" 0 1; fi
}

for b in $BACKENDS; do
  run_backend "$b"
done
finish
