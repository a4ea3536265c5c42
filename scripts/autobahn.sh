#!/usr/bin/env bash
# Autobahn|Testsuite (wstest -m fuzzingclient) against wsc-server's /echo route.
#
# Builds wsc-server, makes a Python 2.7 virtualenv with autobahntestsuite if missing, starts
# the server on 127.0.0.1 with the echo route on, runs every case except 12.* and 13.*
# (permessage-deflate is not implemented), prints a summary per behaviour and exits non-zero
# on any FAILED case.
#
# Env: AUTOBAHN_VENV (default ~/.cache/actix-wsc-autobahn-venv), AUTOBAHN_PORT (9001),
#      AUTOBAHN_CASES (JSON list, default ["*"]), AUTOBAHN_OUT (default target/autobahn),
#      PROFILE (debug|release, default debug).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${AUTOBAHN_VENV:-$HOME/.cache/actix-wsc-autobahn-venv}
PORT=${AUTOBAHN_PORT:-9001}
CASES=${AUTOBAHN_CASES:-'["*"]'}
PROFILE=${PROFILE:-debug}
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${AUTOBAHN_OUT:-$TARGET/autobahn}

if [ ! -x "$VENV/bin/wstest" ]; then
  PY27=""
  # A candidate must run: pyenv's shim for python2.7 exists even when 2.7 is not selected.
  for c in python2.7 "$HOME/.pyenv/versions/2.7.18/bin/python2.7"; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c pass >/dev/null 2>&1; then
      PY27=$(command -v "$c"); break
    fi
  done
  if [ -z "$PY27" ] && command -v pyenv >/dev/null 2>&1; then
    v=$(pyenv versions --bare | grep '^2\.7' | tail -1 || true)
    [ -n "$v" ] && PY27="$(pyenv root)/versions/$v/bin/python2.7"
  fi
  if [ -z "$PY27" ] || [ ! -x "$PY27" ]; then
    echo "autobahn.sh: wstest needs CPython 2.7: install one (pyenv install 2.7.18)" >&2
    exit 1
  fi
  python3 -m pip install -q 'virtualenv==20.21.1'
  python3 -m virtualenv -q -p "$PY27" "$VENV"
  "$VENV/bin/pip" install -q autobahntestsuite
fi

if [ "$PROFILE" = release ]; then
  cargo build --release --bin wsc-server
else
  cargo build --bin wsc-server
fi
BIN="$TARGET/$PROFILE/wsc-server"

rm -rf "$OUT"
mkdir -p "$OUT"
DATA=$(mktemp -d)
# Limits sized for the testsuite: its 9.* cases send 16 MiB messages and floods of frames.
WSC_ECHO_ROUTE=1 WSC_BIND="127.0.0.1:$PORT" WSC_STORE=memory WSC_DATA_DIR="$DATA" \
WSC_MAX_FRAME_BYTES=$((17 << 20)) WSC_SESSION_QUEUE_BYTES=$((64 << 20)) \
WSC_RATE_LIMIT_PER_SEC=0 RUST_LOG=${RUST_LOG:-error} "$BIN" >"$OUT/server.log" 2>&1 &
SERVER=$!
cleanup() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -rf "$DATA"; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
  if ! kill -0 "$SERVER" 2>/dev/null; then
    echo "autobahn.sh: wsc-server exited; log:" >&2; cat "$OUT/server.log" >&2; exit 1
  fi
  sleep 0.1
done

cat >"$OUT/fuzzingclient.json" <<JSON
{
  "outdir": "$OUT/reports",
  "servers": [{"agent": "actix-wsc", "url": "ws://127.0.0.1:$PORT/echo"}],
  "cases": $CASES,
  "exclude-cases": ["12.*", "13.*"],
  "exclude-agent-cases": {}
}
JSON
(cd "$OUT" && "$VENV/bin/wstest" -m fuzzingclient -s fuzzingclient.json >wstest.log 2>&1) || {
  echo "autobahn.sh: wstest failed; see $OUT/wstest.log" >&2; tail -20 "$OUT/wstest.log" >&2; exit 1; }

python3 - "$OUT/reports/index.json" <<'PY'
import json, sys, collections
index = json.load(open(sys.argv[1]))
agent = index["actix-wsc"]
counts = collections.Counter(r["behavior"] for r in agent.values())
close = collections.Counter(r["behaviorClose"] for r in agent.values())
def key(c): return [int(x) for x in c.split(".")]
print("Autobahn fuzzingclient: %d cases against /echo" % len(agent))
print("| behaviour | cases |")
print("|---|---|")
for b in ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]:
    print("| %s | %d |" % (b, counts.get(b, 0)))
print("close behaviour: " + ", ".join("%s %d" % kv for kv in sorted(close.items())))
bad = sorted((c for c, r in agent.items() if r["behavior"] == "FAILED" or r["behaviorClose"] == "FAILED"), key=key)
for c in bad:
    print("FAILED %s (behavior %s, close %s)" % (c, agent[c]["behavior"], agent[c]["behaviorClose"]))
sys.exit(1 if bad else 0)
PY
