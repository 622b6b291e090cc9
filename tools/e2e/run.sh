#!/usr/bin/env bash
# End-to-end checks of `decidiffusion serve` as users run it: the real binary on the demo model,
# bound to loopback on a free port: the same seed as `decidiffusion generate` byte for byte, the
# official `openai` client on the OpenAI Images routes, a real headless Chromium driving the web
# page, and a bounded load test. Installs what it needs (Debian's chromium and chromium-driver;
# selenium, openai and pillow in a venv).
# Usage: tools/e2e/run.sh [--screenshot PATH]
set -euo pipefail
cd "$(dirname "$0")/../.."
screenshot="$(mktemp -d)/web-page.png"
[ "${1:-}" = "--screenshot" ] && screenshot="$2"
bin=.build/release/decidiffusion
[ -x "$bin" ] || { echo "error: $bin not built (run ./test.sh or scripts/setup.sh)" >&2; exit 1; }

missing=""
for p in chromium chromium-driver; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq $missing >/dev/null
fi
venv="${DECI_E2E_VENV:-$HOME/.cache/decidiffusion/e2e-venv}"
if [ ! -x "$venv/bin/python" ]; then
    # Debian's own python3 needs python3-venv for this; pyenv/python.org builds carry it.
    python3 -m venv "$venv" 2>/dev/null || {
        rm -rf "$venv"
        sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    }
fi
"$venv/bin/pip" install -q -r tools/e2e/requirements.txt
py="$venv/bin/python"

start_server() {  # args: extra serve options; sets pid and url
    log="$(mktemp)"
    "$bin" serve --port 0 "$@" >"$log" 2>&1 &
    pid=$!
    url=""
    for _ in $(seq 600); do
        url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -1 || true)"
        [ -n "$url" ] && break
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "error: the server exited" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$url" ] || { cat "$log" >&2; echo "error: the server printed no URL" >&2; exit 1; }
}
stop_server() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap stop_server EXIT

start_server --queue-size 8
"$py" tools/e2e/cli_parity.py --url "$url" --bin "$bin"
"$py" tools/e2e/webuiapi_client_test.py --url "$url" --bin "$bin"
"$py" tools/e2e/openai_client_test.py --url "$url" --bin "$bin"
"$py" tools/e2e/web_page_test.py --url "$url" --screenshot "$screenshot"
"$py" tools/e2e/web_page_test.py --url "$url" --width 390
"$py" tools/e2e/load_test.py --url "$url" --pid "$pid" --clients 16 --submissions 200
stop_server
# With a key: the page asks for it, then works with it (Bearer from the browser).
start_server --api-key e2e-key
"$py" tools/e2e/web_page_test.py --url "$url" --width 390 --api-key e2e-key
stop_server
# The OpenAPI document against the server: no 5xx on generated requests, answers as documented.
# Small limits keep the generated generation requests cheap.
start_server --queue-size 4 --max-pixels 16384 --max-batch 2
"$venv/bin/schemathesis" run "$url/openapi.json" --checks not_a_server_error,response_schema_conformance,status_code_conformance \
    --max-examples 25 --phases coverage,fuzzing -w 1 --request-timeout 60 --no-color
stop_server
# `decidiffusion download`: huggingface_hub (offline) reads the cache it writes from the test Hub
# server; the CLI's offline refusal and the `--model REPO_ID` not-cached message.
DECI_HUB_PYTHON="$py" swift test -c release --skip-build -Xswiftc -enable-testing \
    --filter HubDownloadTests/testFullDownloadWritesTheHubCacheLayoutAndTheModelGenerates
hub="$(mktemp -d)"
if HF_HUB_CACHE="$hub" HF_HUB_OFFLINE=1 "$bin" download test-org/absent 2>"$hub/err"; then
    echo "error: an offline download of an uncached repo succeeded" >&2; exit 1
fi
grep -q "HF_HUB_OFFLINE is set" "$hub/err" || { cat "$hub/err" >&2; exit 1; }
if HF_HUB_CACHE="$hub" "$bin" generate "x" --model test-org/absent 2>"$hub/err"; then
    echo "error: --model with an uncached repo id succeeded" >&2; exit 1
fi
grep -q "decidiffusion download test-org/absent" "$hub/err" || { cat "$hub/err" >&2; exit 1; }
rm -rf "$hub"
# The PostgreSQL job queue across processes: 1 API node + 2 workers, kill -9, a database outage,
# cancel (a throwaway cluster; installs Debian's postgresql when missing).
"$py" tools/e2e/queue_test.py --bin "$bin" --pg tools/pg/throwaway.sh
echo "e2e: ok (screenshot: $screenshot)"
