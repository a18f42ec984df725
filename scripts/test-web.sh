#!/usr/bin/env bash
# The browser tests (README, "The page in a browser"): builds the page, serves it on a free
# localhost port, and drives Debian's headless Chromium through it with playwright-core: the
# lesson view (web/tests/browser.mjs), the playground and the phone viewport
# (web/tests/playground.mjs), the WebGPU build on SwiftShader (web/tests/webgpu.mjs); then the built folder from a generic static server, Python's
# http.server (web/tests/static.mjs). Installs Chromium (apt) and playwright-core (npm ci, from
# web/package-lock.json) when they are missing; `xtask web` installs wasm-bindgen-cli.
#
#   scripts/test-web.sh [OUT_DIR]      (screenshot and figures; default target/web-test)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/web-test}"

if ! command -v chromium >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
fi
# playwright-core needs Node.js 20 or later (this project's machines have it; Debian 12's own
# nodejs package is 18).
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if [ "$node_major" -lt 20 ]; then
    echo "the browser test needs Node.js 20 or later (found: $(node --version 2>/dev/null || echo none))" >&2
    exit 1
fi
(cd web && npm ci --no-audit --no-fund --loglevel=error)
# rust-toolchain.toml lists the target; an older rustup may not add it by itself.
if command -v rustup >/dev/null; then rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true; fi

cargo run --release -p xtask -- web --build-only
log="$(mktemp)"
cargo run --release -p xtask -- web --serve-only --port 0 >"$log" 2>&1 &
server=$!
static=""
static_log="$(mktemp)"
trap 'kill $server 2>/dev/null || true; kill $static 2>/dev/null || true; rm -f "$log" "$static_log"' EXIT
url=""
for _ in $(seq 1 100); do
    url="$(grep -o 'http://127.0.0.1:[0-9]*/' "$log" || true)"
    [ -n "$url" ] && break
    kill -0 $server 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.2
done
[ -n "$url" ] || { echo "the server did not start:"; cat "$log"; exit 1; }
node web/tests/browser.mjs "$url" "$out"
node web/tests/playground.mjs "$url" "$out"
# The WebGPU build on Chromium's software WebGPU adapter (SwiftShader).
node web/tests/webgpu.mjs "$url" "$out"

# The same folder from a server that knows nothing of it.
page_dir="${CARGO_TARGET_DIR:-target}/web"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server --bind 127.0.0.1 --directory "$page_dir" "$port" >"$static_log" 2>&1 &
static=$!
for _ in $(seq 1 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/')" 2>/dev/null && break
    sleep 0.2
done
node web/tests/static.mjs "http://127.0.0.1:$port/"
