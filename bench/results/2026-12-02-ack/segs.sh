#!/bin/bash
# usage: segs.sh BIN "loadgen extra"  -> TCP segments (nstat) over 4 s of an 8 s p2p run
. "$(dirname "$0")/common.sh"
start_server "$1"
taskset -c 1 "$LG" $P2P_ARGS --duration-s 8 $2 > "$d/lg.json" 2>/dev/null &
lg=$!
sleep 3; nstat -n; sleep 4   # the measured window inside the run, not a wait for an event
nstat | grep -E "TcpOutSegs|TcpExtDelayedACKs|TcpExtTCPPureAcks|TcpExtTCPHPAcks|TcpExtTCPHPHits|QuickAck"
wait $lg; msg_per_s "$d/lg.json"
stop_server
