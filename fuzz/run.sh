#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each), starting from the seeds in
# fuzz/seeds/<target>/ (kept in the repo) plus what earlier runs found (fuzz/corpus/, not kept).
# Not part of CI. Needs cargo-fuzz (`cargo install cargo-fuzz`) and a C++ compiler.
#
#   bash fuzz/run.sh                 # all targets, 60 s each
#   bash fuzz/run.sh 300 json_line   # one target, 5 minutes
#
# A crash leaves its input in fuzz/artifacts/<target>/; reproduce it with
# `cargo fuzz run <target> <file>`, fix it, and keep the input as a regression test.
#
# The toolchain here is stable Rust, so the targets build without a sanitizer (ASan needs
# nightly); coverage-guided fuzzing works all the same, and Rust code has no memory errors for
# ASan to find outside `unsafe`. RUSTC_BOOTSTRAP lets cargo-fuzz pass the -Z flags it needs.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
command -v c++ >/dev/null 2>&1 || { echo "error: libFuzzer needs a C++ compiler (apt-get install g++)" >&2; exit 1; }

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

failed=()
for t in "${targets[@]}"; do
    echo "== fuzzing $t for ${seconds}s"
    mkdir -p "corpus/$t" "seeds/$t"
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1; then
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: crashes in ${failed[*]}; inputs in fuzz/artifacts/" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, no crash"
