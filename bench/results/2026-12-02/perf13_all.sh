#!/bin/bash
# perf13's matrix: main table (REPEAT=3), 1 KiB, broadcast to 5000, require_ack vs plain p2p.
set -u
cd /tmp/perf-perf13
export GOHUB_PORT=9111 NODEHUB_PORT=9112
export SUBJECT_NAME=actix-wsc SUBJECT_URL=ws://127.0.0.1:9110/ws
D=/tmp/perf13-data
export SUBJECT_CMD="rm -rf $D; RUST_LOG=warn exec /tmp/perf13-wsc-server --bind 127.0.0.1:9110 --data-dir $D"
REPEAT=3 OUT_DIR=runs/main ./run_compare.sh > runs-main.out 2>&1
REPEAT=3 SIZE=1024 SCENARIOS="p2p p2p_half broadcast echo" OUT_DIR=runs/size1024 PREFLIGHT=0 ./run_compare.sh > runs-size1024.out 2>&1
REPEAT=3 BCAST_SUBS=5000 SCENARIOS="broadcast" OUT_DIR=runs/bcast5000 PREFLIGHT=0 ./run_compare.sh > runs-bcast5000.out 2>&1
# require_ack p2p against plain p2p on the same server binary, interleaved, 3 rounds; the
# harness's own sampler and records (one server per run), so the results are in its format.
for r in 1 2 3; do
  SCENARIOS="p2p" PEERS=" " OUT_DIR=runs/plain-$r PREFLIGHT=0 ./run_compare.sh > runs-plain-$r.out 2>&1 || true
  SCENARIOS="p2p" PEERS=" " LOADGEN_ARGS="--require-ack" OUT_DIR=runs/ack-$r PREFLIGHT=0 ./run_compare.sh > runs-ack-$r.out 2>&1 || true
done
echo done > perf13.done
