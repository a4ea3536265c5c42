#!/bin/bash
# Needs the shared loadgen built in /tmp/perf-c (cp -r ../shared/perf /tmp/perf-c; cargo build --release in loadgen).
mkdir -p /tmp/ab
# usage: prof.sh BIN OUT "loadgen extra"
BIN=$1; OUT=$2; X=$3
d=$(mktemp -d /tmp/ab/data.XXXX)
env RUST_LOG=warn $ENVX taskset -c 0 $BIN --bind 127.0.0.1:9100 --data-dir $d > $d/log 2>&1 & pid=$!
for i in $(seq 100); do (echo > /dev/tcp/127.0.0.1/9100) 2>/dev/null && break; sleep 0.1; done
taskset -c 1 /tmp/perf-c/loadgen/target/release/loadgen --url ws://127.0.0.1:9100/ws --scenario p2p --conns 200 --window 4 --duration-s 8 --size 64 $X > $d/lg.json 2>/dev/null &
lg=$!
sleep 3
perf record -F 1999 -g --call-graph dwarf,16384 -p $pid -o $OUT -- sleep 4 2>&1 | tail -1
wait $lg; python3 -c "import json;j=json.load(open('$d/lg.json'));print('msg/s',j['delivered_per_s'])"
kill $pid; wait $pid 2>/dev/null; rm -rf $d
