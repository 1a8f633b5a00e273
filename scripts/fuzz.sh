#!/usr/bin/env bash
# Coverage-guided fuzzing (AFL++ through cargo-afl, on the stable toolchain) of every decoder
# of untrusted bytes: agent frames, the browser's WebSocket messages, workspace paths,
# multipart upload names (fuzz/src/bin). Each target starts from its committed corpus
# (fuzz/corpus/<target>) and runs CODEPOD_FUZZ_SECONDS (30) — ./x test's bounded budget;
# `bench/run.sh fuzz` runs them longer. A crash fails the run and is kept in
# fuzz/findings/<target>/ to be turned into a test and a fix.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

seconds="${CODEPOD_FUZZ_SECONDS:-30}"
build="$CARGO_TARGET_DIR/fuzz"
targets=(agent_frames ws_messages workspace_path upload_names)

say "fuzzing: building ${#targets[@]} instrumented targets"
(cd "$ROOT/fuzz" && CARGO_TARGET_DIR="$build" cargo afl build --release --locked --quiet)

# No terminal UI; no CPU binding (the machine is shared with the build); crashes are read
# from the output directory, not from the kernel's core pattern.
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
failed=0
for target in "${targets[@]}"; do
  out=$(mktemp -d)
  if ! cargo afl fuzz -i "$ROOT/fuzz/corpus/$target" -o "$out" -V "$seconds" \
    "$build/release/$target" >"$out/log" 2>&1; then
    tail -30 "$out/log" >&2
    die "fuzz: $target did not run"
  fi
  stats="$out/default/fuzzer_stats"
  value() { awk -F': *' -v key="$1" '$1 ~ "^"key" *$" { print $2 }' "$stats"; }
  crashes=$(find "$out/default/crashes" -type f -name 'id:*' | wc -l)
  say "fuzz $target: $(value execs_done) runs in $(value run_time) s, $(value corpus_count) paths, $crashes crashes"
  if ((crashes > 0)); then
    mkdir -p "$ROOT/fuzz/findings/$target"
    cp "$out"/default/crashes/id:* "$ROOT/fuzz/findings/$target/"
    failed=1
  fi
  rm -rf "$out"
done
((failed == 0)) || die "fuzzing found crashes: fuzz/findings/"
echo "fuzz: ${#targets[@]} targets, no crash"
