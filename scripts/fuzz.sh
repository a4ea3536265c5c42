#!/usr/bin/env bash
# Runs each cargo-fuzz target for a bounded time from the seed corpus (PROTOCOL.md examples).
#
# Usage: scripts/fuzz.sh [target...]      (default: inbound ack config api_send)
# Env:   FUZZ_SECONDS (per target, default 60), FUZZ_TOOLCHAIN (default nightly),
#        FUZZ_SANITIZER (none|address, default none: the crate is safe Rust),
#        CARGO_TARGET_DIR (default fuzz/target).
# Findings land in fuzz/artifacts/<target>/; the script exits non-zero on any crash.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_EACH=${FUZZ_SECONDS:-60}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
SANITIZER=${FUZZ_SANITIZER:-none}
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(inbound ack config api_send)

if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
  echo "fuzz.sh: needs the $TOOLCHAIN toolchain: rustup toolchain install $TOOLCHAIN" >&2
  exit 1
fi
if ! cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz
fi

status=0
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t"
  cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  [ "$t" = inbound ] && cp -n seeds/inbound_text/* "corpus/$t/" 2>/dev/null || true
  echo "== fuzz $t for ${SECONDS_EACH}s"
  log=$(mktemp)
  if cargo "+$TOOLCHAIN" fuzz run -s "$SANITIZER" "$t" "corpus/$t" -- \
      -max_total_time="$SECONDS_EACH" -max_len=65536 -timeout=10 2>&1 | tee "$log" | grep -E '^(#[0-9]+\s+(DONE|INITED)|==|SUMMARY|Done)' ; then :; fi
  if grep -q 'Done [0-9]* runs' "$log"; then
    echo "$t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -1)"
  else
    echo "$t: FAILED (crash or build error); see fuzz/artifacts/$t/" >&2
    tail -30 "$log" >&2
    status=1
  fi
  rm -f "$log"
done
exit $status
