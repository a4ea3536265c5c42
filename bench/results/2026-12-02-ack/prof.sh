#!/bin/bash
# usage: prof.sh BIN OUT "loadgen extra"  -> perf record of the server over 4 s of an 8 s p2p run
. "$(dirname "$0")/common.sh"
start_server "$1"
taskset -c 1 "$LG" $P2P_ARGS --duration-s 8 $3 > "$d/lg.json" 2>/dev/null &
lg=$!
sleep 3   # start sampling inside the measured phase
perf record -F 1999 -g --call-graph dwarf,16384 -p $pid -o "$2" -- sleep 4 2>&1 | tail -1
wait $lg; msg_per_s "$d/lg.json"
stop_server
