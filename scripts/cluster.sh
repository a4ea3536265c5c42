#!/usr/bin/env bash
# A local cluster with one command: redis-server (AOF on, its own directory) and three
# wsc-server nodes on 127.0.0.1, stopped by PID on Ctrl-C or exit.
#
#   scripts/cluster.sh            # start, print the URLs, run until Ctrl-C
#   scripts/cluster.sh --check    # start, verify a cross-node delivery (n1 -> n2, ack read
#                                 # back on n3), stop; exit 0 on success, 1 on failure
#
# Settings (environment): REDIS_PORT (6390), NODE_PORTS ("9100 9200 9300"), NODE_TTL_MS
# (3000), CLUSTER_DIR (target/cluster: Redis's AOF, node data and logs), RUST_LOG (warn),
# CARGO_TARGET_DIR (target). The release binaries are built when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

redis_port="${REDIS_PORT:-6390}"
read -r -a ports <<< "${NODE_PORTS:-9100 9200 9300}"
ttl="${NODE_TTL_MS:-3000}"
dir="${CLUSTER_DIR:-target/cluster}"
target="${CARGO_TARGET_DIR:-target}"
server="$target/release/wsc-server"
client="$target/release/wsc-client"
redis_url="redis://127.0.0.1:$redis_port/0"

command -v redis-server >/dev/null 2>&1 || {
  echo "redis-server is not installed (Debian: apt-get install redis-server)" >&2
  exit 1
}
command -v curl >/dev/null 2>&1 || { echo "curl is not installed (apt-get install curl)" >&2; exit 1; }

if [ ! -x "$server" ] || [ ! -x "$client" ]; then
  echo "== building the release binaries (cargo build --release)"
  cargo build --release --bin wsc-server --bin wsc-client
fi

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$redis_port" "${ports[@]}"; do
  if port_taken "$p"; then
    echo "port $p on 127.0.0.1 is already taken: stop what listens there or set REDIS_PORT / NODE_PORTS" >&2
    exit 1
  fi
done

mkdir -p "$dir/redis"
dir="$(cd "$dir" && pwd)"
pids=()
names=()
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  [ -n "${client_pid:-}" ] && kill "$client_pid" 2>/dev/null || true
  for i in "${!pids[@]}"; do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
  done
  for i in "${!pids[@]}"; do
    for _ in $(seq 50); do kill -0 "${pids[$i]}" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "${names[$i]} (pid ${pids[$i]}) did not stop in 5 s: SIGKILL" >&2
      kill -KILL "${pids[$i]}" 2>/dev/null || true
    fi
  done
  echo "== stopped (logs in $dir)"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" \
  --appendonly yes --appendfsync always --save "" --daemonize no --protected-mode yes \
  > "$dir/redis.log" 2>&1 &
pids+=($!); names+=(redis-server)
# Redis answers +PONG on a raw socket.
ping_redis() {
  exec 3<>"/dev/tcp/127.0.0.1/$redis_port" || return 1
  printf 'PING\r\n' >&3
  local reply=""
  read -r -t 1 reply <&3 || true
  exec 3>&-
  [[ "$reply" == +PONG* ]]
}
for _ in $(seq 100); do ping_redis 2>/dev/null && break; sleep 0.1; done
ping_redis 2>/dev/null || { echo "redis-server did not answer on $redis_port (see $dir/redis.log)" >&2; exit 1; }

for i in "${!ports[@]}"; do
  n=$((i + 1))
  mkdir -p "$dir/n$n"
  RUST_LOG="${RUST_LOG:-warn}" "$server" --bind "127.0.0.1:${ports[$i]}" --redis-url "$redis_url" \
    --node-id "n$n" --node-ttl-ms "$ttl" --data-dir "$dir/n$n" > "$dir/n$n.log" 2>&1 &
  pids+=($!); names+=("n$n")
done
for i in "${!ports[@]}"; do
  n=$((i + 1))
  ok=0
  for _ in $(seq 100); do
    if curl -fsS -m 1 "http://127.0.0.1:${ports[$i]}/health" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "${pids[$((i + 1))]}" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$ok" != 1 ]; then
    echo "node n$n did not become healthy on ${ports[$i]}; its log ($dir/n$n.log):" >&2
    tail -n 20 "$dir/n$n.log" >&2
    exit 1
  fi
done

echo "== cluster up: redis $redis_url (AOF in $dir/redis)"
for i in "${!ports[@]}"; do
  echo "   n$((i + 1)): ws://127.0.0.1:${ports[$i]}/ws   http://127.0.0.1:${ports[$i]}/api/stats   (pid ${pids[$((i + 1))]})"
done

json_field() { # json_field FIELD: reads JSON on stdin, prints top-level FIELD
  python3 -c 'import json,sys; v=json.load(sys.stdin); print(v.get(sys.argv[1], ""))' "$1"
}

if [ "$check" = 1 ]; then
  a="${ports[0]}"; b="${ports[1]}"; c="${ports[2]:-${ports[1]}}"
  work="$dir/check"; rm -rf "$work"; mkdir -p "$work"
  mkfifo "$work/in"
  "$client" --url "ws://127.0.0.1:$b/ws" --user-id cluster-check < "$work/in" > "$work/out.jsonl" 2> "$work/client.log" &
  client_pid=$!
  exec 4> "$work/in" # keeps the client's stdin open
  fail() { echo "CHECK FAILED: $*" >&2; exit 1; }
  for _ in $(seq 100); do grep -q '"connected"' "$work/out.jsonl" 2>/dev/null && break; sleep 0.1; done
  grep -q '"connected"' "$work/out.jsonl" || fail "no welcome on n2 (see $work/client.log)"
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$a/api/online" | grep -q '"cluster-check"' && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$a/api/online" | grep -q '"cluster-check"' || fail "n1's /api/online does not list the user on n2"
  content="cross-node-$$-$RANDOM"
  answer=$(curl -sS -X POST -H 'content-type: application/json' \
    -d "{\"to\":\"cluster-check\",\"content\":\"$content\",\"require_ack\":true}" \
    "http://127.0.0.1:$a/api/send")
  echo "   POST n1 /api/send -> $answer"
  [ "$(echo "$answer" | json_field status)" = accepted ] || fail "send through n1 not accepted"
  id=$(echo "$answer" | json_field id)
  for _ in $(seq 100); do grep -q "$content" "$work/out.jsonl" && break; sleep 0.1; done
  grep -q "$content" "$work/out.jsonl" || fail "the message did not reach the client on n2"
  echo "   delivered on n2: $(grep "$content" "$work/out.jsonl")"
  status=""
  for _ in $(seq 100); do
    status=$(curl -fsS "http://127.0.0.1:$c/api/messages/$id?from=system" | json_field status || true)
    [ "$status" = acked ] && break
    sleep 0.1
  done
  [ "$status" = acked ] || fail "record $id on n3 is '$status', not acked"
  echo "   record $id read on n3: acked"
  exec 4>&- # end of input: the client closes with 1000 and exits
  wait "$client_pid" || fail "wsc-client exited with $?"
  client_pid=""
  echo "CHECK PASSED: n1 -> n2 delivered and acked, record read on n3"
  exit 0
fi

echo "== Ctrl-C stops everything"
# Runs until a process dies or a signal arrives.
wait -n "${pids[@]}" || true
echo "a cluster process exited; stopping the rest" >&2
exit 1
