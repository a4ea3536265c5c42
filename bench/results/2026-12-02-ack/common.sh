# Shared by ackab.sh, segs.sh and prof.sh: one wsc-server under taskset -c 0 on port 9100
# with a fresh data directory, and the loadgen's fixed p2p arguments.
# Needs the shared loadgen built in /tmp/perf-c
# (cp -r ../shared/perf /tmp/perf-c && (cd /tmp/perf-c/loadgen && cargo build --release)).
LG=${LG:-/tmp/perf-c/loadgen/target/release/loadgen}
P2P_ARGS="--url ws://127.0.0.1:9100/ws --scenario p2p --conns 200 --window 4 --size 64"
mkdir -p /tmp/ab

# start_server BIN: sets $pid and $d (data dir); ENVX adds environment (e.g. WSC_FLOOR=1).
start_server() {
  d=$(mktemp -d /tmp/ab/data.XXXX)
  env RUST_LOG=warn $ENVX taskset -c 0 "$1" --bind 127.0.0.1:9100 --data-dir "$d" > "$d/log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/9100) 2>/dev/null && return 0; sleep 0.1; done
  echo "server did not listen on 127.0.0.1:9100 within 10 s; its log: $d/log" >&2
  exit 1
}

stop_server() { kill "$pid"; wait "$pid" 2>/dev/null; rm -rf "$d"; }

# msg_per_s FILE: the delivered rate of a loadgen JSON report.
msg_per_s() { python3 -c "import json,sys;print('msg/s',json.load(open(sys.argv[1]))['delivered_per_s'])" "$1"; }
