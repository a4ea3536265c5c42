#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh Debian machine (as root,
# with apt and npm), then runs every test: `cargo test` (unit, integration over real sockets
# on 127.0.0.1 with a real redis-server, the JS client's `node --test` suite) and the
# headless-Chromium browser test. Without root, a missing tool stops it with the command
# that installs it. `scripts/test.sh --install-only` stops after installing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
# The tests build C code in some dependencies and signal the server binary with `kill`.
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v kill >/dev/null 2>&1 || missing+=(procps)
# tests/redis_store.rs runs a real Redis 7 on 127.0.0.1.
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# The JS client's tests (tests/js_client.rs runs `node --test`) and the browser test need
# Node.js 18+ with npm, and Debian's chromium (driven by puppeteer-core: no browser download).
{ command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; } || missing+=(nodejs npm)
command -v chromium >/dev/null 2>&1 || [ -n "${CHROMIUM_BIN:-}" ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "the tests need ${missing[*]}: install them (apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
(cd clients/js && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund)
[ "${1:-}" = "--install-only" ] && exit 0

echo "== cargo test"
cargo test
echo "== browser test (headless chromium: dashboard console, SSE-only page)"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
(cd clients/js && WSC_SERVER_BIN="$target/debug/wsc-server" WSC_SCREENSHOT="$target/dashboard.png" node browser-test/run.mjs)
