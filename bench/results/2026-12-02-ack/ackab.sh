#!/bin/bash
# usage: ackab.sh BIN ROUNDS  -> plain and --require-ack p2p per round, fresh server each run
. "$(dirname "$0")/common.sh"
BIN=${1:-target/release/wsc-server}; ROUNDS=${2:-3}; DUR=${DUR:-8}
run() { # $1 = extra loadgen args
  start_server "$BIN"
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  taskset -c 1 timeout 60 "$LG" $P2P_ARGS --duration-s "$DUR" $1 > "$d/lg.json" 2>/dev/null
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  rss=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
  python3 - "$d/lg.json" "$1" "$((t1-t0))" "$rss" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); l = j['lat_us']
print(sys.argv[2].ljust(14), 'msg/s=%.0f' % j['delivered_per_s'], 'p50=%s p99=%s' % (l.get('p50'), l.get('p99')),
      'rcpt=%d err=%d ef=%d lost=%d dups=%d' % (j['receipts'], j['errors'], j['error_frames'], j['lost'], j['dups']),
      'cpu_ticks=' + sys.argv[3], 'hwm_kb=' + sys.argv[4])
PY
  stop_server
}
for _ in $(seq "$ROUNDS"); do run ""; run "--require-ack"; done
