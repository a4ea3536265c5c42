#!/bin/bash
# Needs the shared loadgen built in /tmp/perf-c (cp -r ../shared/perf /tmp/perf-c; cargo build --release in loadgen).
mkdir -p /tmp/ab
# usage: ackab.sh BIN ROUNDS  -> prints plain/ack msg/s per round
BIN=${1:-/work/main/target/release/wsc-server}; ROUNDS=${2:-3}; DUR=${DUR:-8}
LG=${LG:-/tmp/perf-c/loadgen/target/release/loadgen}
run() { # $1 = extra args
  d=$(mktemp -d /tmp/ab/data.XXXX)
  env RUST_LOG=warn $ENVX taskset -c 0 $BIN --bind 127.0.0.1:9100 --data-dir $d > $d/log 2>&1 &
  pid=$!
  for i in $(seq 100); do (echo > /dev/tcp/127.0.0.1/9100) 2>/dev/null && break; sleep 0.1; done
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  out=$(taskset -c 1 timeout 60 $LG --url ws://127.0.0.1:9100/ws --scenario p2p --conns 200 --window 4 --duration-s $DUR --size 64 $1 2>/dev/null)
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  rss=$(awk '/VmHWM/{print $2}' /proc/$pid/status)
  kill $pid; wait $pid 2>/dev/null
  echo "$out" | python3 -c "
import sys,json
t=sys.stdin.read(); j=json.loads(t[t.index('{'):])
tp=j.get('throughput') or j.get('msgs_per_s') or j.get('delivered_per_s')
l=j['lat_us']; print('$1'.ljust(14), 'msg/s=%.0f'%j['delivered_per_s'], 'p50=%s p99=%s'%(l.get('p50'),l.get('p99')), 'rcpt=%d err=%d ef=%d lost=%d dups=%d'%(j['receipts'],j['errors'],j['error_frames'],j['lost'],j['dups']), 'cpu_ticks=$((t1-t0))', 'hwm_kb=$rss')"
  rm -rf $d
}
for r in $(seq $ROUNDS); do run ""; run "--require-ack"; done
