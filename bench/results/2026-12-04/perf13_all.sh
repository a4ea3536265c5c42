#!/bin/bash
# Issue 13's matrix in one run, against the shared harness (../shared/perf copied to $PERF,
# with run_compare.sh's peer list extended by a "base" server: `patch -p1 < transport.patch`
# in the copy):
#   main       REPEAT=3, 64-byte content, every scenario, actix-wsc + gohub + nodehub
#   size1024   REPEAT=3, SIZE=1024, p2p p2p_half broadcast echo
#   bcast5000  REPEAT=3, BCAST_SUBS=5000, broadcast
#   plain/ack  actix-wsc p2p without and with --require-ack, 3 interleaved rounds
#   transport  REPEAT=3, the same binary on its raw transport ("actix-wsc") against
#              WSC_WS_TRANSPORT=actix-web ("base": actix-web's route, actix-ws)
# usage: perf13_all.sh BIN   (a release wsc-server; results in $PERF/runs/13-*)
set -u
BIN=${1:?a release wsc-server binary}
PERF=${PERF:-/tmp/perf}
cd "$PERF"
cp "$BIN" /tmp/perf13-wsc-server
D=/tmp/perf13-data
export SUBJECT_NAME=actix-wsc SUBJECT_URL=ws://127.0.0.1:9100/ws
export SUBJECT_CMD="rm -rf $D; RUST_LOG=warn exec /tmp/perf13-wsc-server --bind 127.0.0.1:9100 --data-dir $D"
export BASE_CMD="rm -rf $D-base; WSC_WS_TRANSPORT=actix-web RUST_LOG=warn exec /tmp/perf13-wsc-server --bind 127.0.0.1:9103 --data-dir $D-base"
REPEAT=3 OUT_DIR=runs/13-main ./run_compare.sh > runs/13-main.out 2>&1
REPEAT=3 SIZE=1024 SCENARIOS="p2p p2p_half broadcast echo" OUT_DIR=runs/13-size1024 PREFLIGHT=0 ./run_compare.sh > runs/13-size1024.out 2>&1
REPEAT=3 BCAST_SUBS=5000 SCENARIOS="broadcast" OUT_DIR=runs/13-bcast5000 PREFLIGHT=0 ./run_compare.sh > runs/13-bcast5000.out 2>&1
for r in 1 2 3; do
  SCENARIOS="p2p" PEERS=" " OUT_DIR=runs/13-plain-$r PREFLIGHT=0 ./run_compare.sh > runs/13-plain-$r.out 2>&1 || true
  SCENARIOS="p2p" PEERS=" " LOADGEN_ARGS="--require-ack" OUT_DIR=runs/13-ack-$r PREFLIGHT=0 ./run_compare.sh > runs/13-ack-$r.out 2>&1 || true
done
REPEAT=3 PEERS="gohub base" OUT_DIR=runs/13-transport PREFLIGHT=0 ./run_compare.sh > runs/13-transport.out 2>&1
echo done > runs/13.done
