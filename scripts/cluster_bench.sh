#!/usr/bin/env bash
# Cross-node p2p against single-node p2p, in one run (issue 12, "Performance"), with the
# shared load generator. Every server process (wsc-server nodes and redis-server) is pinned to
# core 0 (taskset -c 0), the load generator to core 1; servers start fresh for each run and
# are stopped by PID.
#
# Rows:
#   single  one wsc-server as `cargo run --release` runs it (no Redis, SQLite store)
#   local   a two-node cluster (Redis), every pair on node A (loadgen --url A)
#   cross   the same cluster, every pair spanning A and B (loadgen --url A,B)
# Modes: `max` (closed loop, window W) then `half` (open loop at half of this repeat's cross
# max), for each row. CPU per message = CPU seconds (utime+stime from /proc/PID/stat) of every
# server process of the row during the measured window / delivered messages in that window.
#
#   scripts/cluster_bench.sh                # REPEAT=3 for medians
#
# Columns: msg/s delivered, p50/p99 one-way latency, srv CPU = CPU of the row's servers / wall
# (both nodes and Redis share core 0: at most 1.00), us/msg = their CPU per delivered message,
# lg CPU = load generator, lag99 = open-loop sender lateness p99, other = CPU used by the rest
# of the machine (above ~0.1 the run was disturbed), bad = lost+dups+misrouted+errors.
# Settings (environment): REPEAT (1), DURATION (10), WARMUP (1), CONNS (200), WINDOW (4),
# SIZE (64), PERF_DIR (/tmp/perf-clustertest, a copy of ../shared/perf), BENCH_PORTS
# ("9410 9420"), REDIS_PORT (6394), OUT (target/cluster-bench/<stamp>), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

repeat="${REPEAT:-1}"
duration="${DURATION:-10}"
warmup="${WARMUP:-1}"
conns="${CONNS:-200}"
window="${WINDOW:-4}"
size="${SIZE:-64}"
perf="${PERF_DIR:-/tmp/perf-clustertest}"
read -r -a ports <<< "${BENCH_PORTS:-9410 9420}"
redis_port="${REDIS_PORT:-6394}"
target="${CARGO_TARGET_DIR:-target}"
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
server="$target/release/wsc-server"
out="${OUT:-target/cluster-bench/$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

for tool in redis-server taskset python3 curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "$tool is not installed (apt-get install ${tool/taskset/util-linux})" >&2; exit 1; }
done
if [ ! -d "$perf/loadgen" ]; then
  [ -d ../shared/perf ] || [ -d /work/shared/perf ] || { echo "no load generator: set PERF_DIR to a copy of shared/perf" >&2; exit 1; }
  src=/work/shared/perf; [ -d ../shared/perf ] && src=../shared/perf
  cp -r "$src" "$perf"
fi
loadgen="$perf/loadgen/target/release/loadgen"
if [ ! -x "$loadgen" ]; then
  echo "== building the load generator in $perf/loadgen"
  (cd "$perf/loadgen" && cargo build --release)
fi
if [ ! -x "$server" ]; then
  echo "== building wsc-server (release)"
  cargo build --release --bin wsc-server
fi

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$redis_port" "${ports[@]}"; do
  port_taken "$p" && { echo "port $p is taken; set BENCH_PORTS / REDIS_PORT" >&2; exit 1; }
done

pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
}
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

wait_health() {
  for _ in $(seq 100); do curl -fsS -m 1 "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "node on $1 not healthy; logs in $out" >&2; return 1
}

# start_row ROW: starts the servers of ROW; sets pids.
start_row() {
  local row=$1 dir="$out/run-data"
  rm -rf "$dir"; mkdir -p "$dir/redis" "$dir/a" "$dir/0" "$dir/1"
  if [ "$row" = single ]; then
    RUST_LOG=warn taskset -c 0 "$server" --bind "127.0.0.1:${ports[0]}" --data-dir "$dir/a" \
      >> "$out/single.log" 2>&1 &
    pids+=($!)
    wait_health "${ports[0]}"
    return
  fi
  taskset -c 0 redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" \
    --appendonly yes --appendfsync always --save "" --daemonize no >> "$out/redis.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do port_taken "$redis_port" && break; sleep 0.05; done
  local i
  for i in 0 1; do
    RUST_LOG=warn taskset -c 0 "$server" --bind "127.0.0.1:${ports[$i]}" \
      --redis-url "redis://127.0.0.1:$redis_port/0" --node-id "bench-$i" \
      --data-dir "$dir/$i" >> "$out/node$i.log" 2>&1 &
    pids+=($!)
  done
  wait_health "${ports[0]}"; wait_health "${ports[1]}"
}

driver="$out/measure.py"
cat > "$driver" <<'PY'
"""Runs the load generator, samples CPU of the server PIDs between its PHASE markers."""
import json, os, subprocess, sys, time
CLK = os.sysconf("SC_CLK_TCK")
row, mode, pids, out_dir = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3].split(",")], sys.argv[4]
cmd = sys.argv[5:]
def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK
def busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK  # all but idle and iowait, steal included
err_path = f"{out_dir}/loadgen-{row}-{mode}-{int(time.time()*1000)}.stderr"
with open(err_path, "w") as err:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    t0 = c0 = t1 = c1 = None
    while p.poll() is None and t1 is None:
        text = open(err_path).read()
        if t0 is None and "PHASE measure" in text:
            t0, c0, b0 = time.monotonic(), {q: cpu(q) for q in pids}, busy()
        if t0 is not None and "PHASE drain" in text:
            t1, c1, b1 = time.monotonic(), {q: cpu(q) for q in pids}, busy()
        time.sleep(0.02)
    stdout, _ = p.communicate(timeout=120)
last = [l for l in stdout.splitlines() if l.startswith("{")]
if not last or t0 is None or t1 is None:
    print(json.dumps({"row": row, "mode": mode, "error": "no summary or no phase markers", "stderr": err_path}))
    sys.exit(0)
s = json.loads(last[-1])
wall = t1 - t0
cpu_s = sum(c1[q] - c0[q] for q in pids)
rate = s.get("delivered_per_s") or 0
rec = {
    "row": row, "mode": mode, "delivered_per_s": rate,
    "p50_ms": (s["lat_us"].get("p50") or 0) / 1000, "p99_ms": (s["lat_us"].get("p99") or 0) / 1000,
    "cpu_util": cpu_s / wall, "cpu_us_per_msg": cpu_s / (rate * wall) * 1e6 if rate else None,
    "per_process_cpu_s": [round(c1[q] - c0[q], 3) for q in pids],
    "loadgen_cpu": s.get("loadgen_cpu_util"),
    "other_cpu": (b1 - b0 - cpu_s) / wall - (s.get("loadgen_cpu_util") or 0),
    "send_lag_p99_ms": ((s.get("send_lag_us") or {}).get("p99") or 0) / 1000,
    "bad": sum(s.get(k, 0) or 0 for k in ("lost", "dups", "misrouted", "errors", "error_frames", "connect_failed")),
    "rate": s.get("rate"),
}
print(json.dumps(rec))
PY

results="$out/results.jsonl"
: > "$results"
run_one() { # run_one ROW MODE [RATE]
  local row=$1 mode=$2 rate=${3:-} urls
  start_row "$row"
  urls="ws://127.0.0.1:${ports[0]}/ws"
  [ "$row" = cross ] && urls="$urls,ws://127.0.0.1:${ports[1]}/ws"
  local flow=(--window "$window")
  [ "$mode" = half ] && flow=(--rate "$rate")
  local pidlist
  pidlist=$(IFS=,; echo "${pids[*]}")
  local rec
  rec=$(timeout "$(python3 -c "print(int($duration + $warmup + 60))")" python3 "$driver" "$row" "$mode" "$pidlist" "$out" \
    taskset -c 1 "$loadgen" --url "$urls" --scenario p2p --conns "$conns" --duration-s "$duration" \
    --warmup-s "$warmup" --size "$size" "${flow[@]}" --label "$row-$mode")
  echo "$rec" | tee -a "$results"
  stop_all
}

for r in $(seq "$repeat"); do
  echo "== repeat $r/$repeat: max throughput (closed loop, window $window, $conns conns)"
  for row in cross local single; do run_one "$row" max; done
  half=$(python3 -c 'import json,sys
rs=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]
c=[x for x in rs if x["row"]=="cross" and x["mode"]=="max" and x.get("delivered_per_s")]
print(int(c[-1]["delivered_per_s"]/2) if c else 0)' "$results")
  [ "$half" -gt 0 ] || { echo "no cross-node maximum to halve; see $out" >&2; exit 1; }
  echo "== repeat $r/$repeat: open loop at $half msg/s (half of this repeat's cross max)"
  for row in cross local single; do run_one "$row" half "$half"; done
done

python3 - "$results" <<'PY' | tee "$out/table.txt"
import json, statistics, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def f(v, nd=1):
    return "-" if v is None else f"{v:.{nd}f}"
print(f"{'row':8} {'mode':5} {'runs':>4} {'msg/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'srv CPU':>7} {'us/msg':>7} {'lg CPU':>6} {'lag99':>6} {'other':>5} {'bad':>4}")
by = {}
for row in ("single", "local", "cross"):
    for mode in ("max", "half"):
        g = [r for r in rs if r["row"] == row and r["mode"] == mode and "error" not in r]
        if not g:
            continue
        m = {k: med([r.get(k) for r in g]) for k in ("delivered_per_s", "p50_ms", "p99_ms", "cpu_util", "cpu_us_per_msg", "loadgen_cpu", "send_lag_p99_ms", "other_cpu")}
        m["bad"] = sum(r["bad"] for r in g)
        by[(row, mode)] = m
        print(f"{row:8} {mode:5} {len(g):>4} {f(m['delivered_per_s'],0):>9} {f(m['p50_ms'],2):>7} {f(m['p99_ms'],2):>7} {f(m['cpu_util'],2):>7} {f(m['cpu_us_per_msg'],2):>7} {f(m['loadgen_cpu'],2):>6} {f(m['send_lag_p99_ms'],1):>6} {f(m['other_cpu'],2):>5} {m['bad']:>4}")
def ratio(a, b):
    return "-" if a is None or not b else f"{a / b:.2f}x"
c, s = by.get(("cross", "half"), {}), by.get(("single", "half"), {})
cm, sm = by.get(("cross", "max"), {}), by.get(("single", "max"), {})
print()
print(f"cross/single at half rate: p99 {ratio(c.get('p99_ms'), s.get('p99_ms'))} (target <= 2x), "
      f"CPU/msg {ratio(c.get('cpu_us_per_msg'), s.get('cpu_us_per_msg'))} (target <= 2.5x); "
      f"max throughput {ratio(cm.get('delivered_per_s'), sm.get('delivered_per_s'))}")
errs = [r for r in rs if "error" in r]
if errs:
    print(f"{len(errs)} run(s) failed: {errs}")
PY
echo "== results in $out"
