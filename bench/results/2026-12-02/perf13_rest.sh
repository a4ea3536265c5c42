#!/bin/bash
# The rest of perf13's matrix, with RETRIES=0: the machine was disturbed in every window of
# the main run (other CPU ~1.5 cores), so retries only tripled the time.
set -u
cd /tmp/perf-perf13
export GOHUB_PORT=9111 NODEHUB_PORT=9112 RETRIES=0
export SUBJECT_NAME=actix-wsc SUBJECT_URL=ws://127.0.0.1:9110/ws
D=/tmp/perf13-data
export SUBJECT_CMD="rm -rf $D; RUST_LOG=warn exec /tmp/perf13-wsc-server --bind 127.0.0.1:9110 --data-dir $D"
for r in 1 2 3; do
  SCENARIOS="p2p" PEERS=" " OUT_DIR=runs/plain-$r PREFLIGHT=0 ./run_compare.sh > runs-plain-$r.out 2>&1 || true
  SCENARIOS="p2p" PEERS=" " LOADGEN_ARGS="--require-ack" OUT_DIR=runs/ack-$r PREFLIGHT=0 ./run_compare.sh > runs-ack-$r.out 2>&1 || true
done
REPEAT=3 BCAST_SUBS=5000 SCENARIOS="broadcast" OUT_DIR=runs/bcast5000 PREFLIGHT=0 ./run_compare.sh > runs-bcast5000.out 2>&1
REPEAT=3 SIZE=1024 SCENARIOS="p2p p2p_half broadcast echo" OUT_DIR=runs/size1024 PREFLIGHT=0 ./run_compare.sh > runs-size1024.out 2>&1
echo done > perf13.done
