#!/usr/bin/env bash
# Schema validation and schema-driven fuzzing of the admin API.
#
# Starts `target/debug/valet serve` on a fresh data directory and a free loopback port, mints
# an admin token with the CLI, validates /admin/api/openapi.json with openapi-spec-validator,
# then runs schemathesis against every documented operation with the `not_a_server_error`
# check. Exits non-zero if the document is invalid, if any request got a 5xx (or broke the
# connection), or if the server logged a panic or a failed request.
#
# The tools live in a venv under target/fuzz-venv, pinned by
# scripts/admin-api-fuzz-requirements.txt (re-installed when that file changes).
#
# Environment:
#   FUZZ_MAX_EXAMPLES  examples per operation and phase (default 50)
#   FUZZ_SEED          schemathesis seed, to replay a run (default: random)
#   FUZZ_WORKERS       concurrent schemathesis workers (default 1: with more, CPython 3.11's
#                      ast module can fail inside hypothesis, "AST constructor recursion depth")
#   FUZZ_CHECKS        schemathesis checks (default not_a_server_error)
#   SKIP_BUILD=1       use the existing target/debug/valet
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
valet="$root/target/debug/valet"
requirements="$root/scripts/admin-api-fuzz-requirements.txt"
venv="$root/target/fuzz-venv"

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    cargo build -q -p valet --bin valet
fi
[[ -x "$valet" ]] || { echo "error: $valet is missing (cargo build -p valet)" >&2; exit 2; }

if [[ ! -x "$venv/bin/schemathesis" ]] || ! cmp -s "$requirements" "$venv/.requirements"; then
    echo "== installing the fuzz tools into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$venv/.requirements"
fi

data=$(mktemp -d "${TMPDIR:-/tmp}/valet-admin-fuzz.XXXXXX")
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$data"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
echo "== starting valet on $base (data in $data)"
VALET_LOG_FORMAT=json "$valet" --data-dir "$data" serve --listen "127.0.0.1:$port" >"$data/serve.out" 2>"$data/serve.log" &
server_pid=$!

for _ in $(seq 1 200); do
    if python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$base/readyz" 2>/dev/null; then
        break
    fi
    kill -0 "$server_pid" 2>/dev/null || { echo "error: valet exited early" >&2; cat "$data/serve.log" >&2; exit 1; }
    sleep 0.1
done

token=$("$valet" --data-dir "$data" admin-token create --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

echo "== validating the OpenAPI document"
python3 -c "import urllib.request, sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())" "$base/admin/api/openapi.json" >"$data/openapi.json"
"$venv/bin/openapi-spec-validator" "$data/openapi.json"

echo "== fuzzing with schemathesis"
seed_args=()
[[ -n "${FUZZ_SEED:-}" ]] && seed_args=(--seed "$FUZZ_SEED")
status=0
"$venv/bin/schemathesis" run "$base/admin/api/openapi.json" \
    --url "$base" \
    -H "Authorization: Bearer $token" \
    --checks "${FUZZ_CHECKS:-not_a_server_error}" \
    --max-examples "${FUZZ_MAX_EXAMPLES:-50}" \
    --workers "${FUZZ_WORKERS:-1}" \
    --request-timeout 30 \
    --output-sanitize true \
    --report junit --report-dir "$root/target/admin-api-fuzz" \
    "${seed_args[@]}" || status=$?

# A broken connection or a 5xx that schemathesis did not attribute still shows in the log.
if grep -E '"request failed"|panicked' "$data/serve.log" >/dev/null; then
    echo "error: the server logged failed requests or a panic:" >&2
    grep -E '"request failed"|panicked' "$data/serve.log" | head -20 >&2
    status=1
fi
if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "error: the server died during the run" >&2
    tail -50 "$data/serve.log" >&2
    status=1
fi

if [[ $status -eq 0 ]]; then
    echo "== admin API fuzz: no server errors"
else
    echo "== admin API fuzz FAILED (exit $status); junit report in target/admin-api-fuzz" >&2
fi
exit $status
