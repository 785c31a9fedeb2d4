#!/usr/bin/env bash
# Builds and runs the cargo-fuzz targets of fuzz/ for a fixed time each, on the stable toolchain.
#   scripts/fuzz.sh SECONDS [TARGET...]     (default: every target)
# `make fuzz-smoke` runs it with FUZZ_SMOKE_SECONDS (part of `make test`), `make fuzz` with
# FUZZ_SECONDS. The instrumented build is cached in fuzz/target; the corpus grows in
# fuzz/target/corpus/<target> (seeded from fuzz/seeds/<target>, which is committed); crashes are
# written to fuzz/artifacts/<target>/ and make this script fail.
#
# Stable toolchain: without a sanitizer cargo-fuzz passes only stable -C flags (sancov passes and
# LLVM options), so no nightly is needed. FUZZ_TOOLCHAIN=nightly FUZZ_SANITIZER=address runs with
# AddressSanitizer where a nightly toolchain is installed.
#
# FUZZ_PROFILE=dev builds without optimisation: a cold build costs about a third of the optimised
# one, which is what the short run inside `make test` needs on a fresh 2-core machine; the long
# run (`make fuzz`) uses the default optimised build, which executes far more inputs per second.
set -euo pipefail
seconds="${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}"
shift
cd "$(dirname "$0")/.."
cargo_fuzz="$(./scripts/install-cargo-fuzz.sh)"
toolchain=()
if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then toolchain=("+$FUZZ_TOOLCHAIN"); fi
sanitizer="${FUZZ_SANITIZER:-none}"
profile=()
if [ "${FUZZ_PROFILE:-}" = dev ]; then profile=(--dev); fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <("$cargo_fuzz" list)
fi
# cargo-fuzz is a cargo subcommand: run it through cargo so that the toolchain applies.
export PATH="$(dirname "$cargo_fuzz"):$PATH"
printf '[fuzz %s] building the fuzz targets (cached in fuzz/target)\n' "$(date +%H:%M:%S)" >&2
cargo "${toolchain[@]}" fuzz build "${profile[@]}" --sanitizer "$sanitizer" >&2
for t in "${targets[@]}"; do
  corpus="fuzz/target/corpus/$t"
  log="fuzz/target/fuzz-$t.log"
  mkdir -p "$corpus"
  printf '[fuzz %s] %s for %ss (log: %s)\n' "$(date +%H:%M:%S)" "$t" "$seconds" "$log" >&2
  if ! cargo "${toolchain[@]}" fuzz run "${profile[@]}" --sanitizer "$sanitizer" "$t" "$corpus" "fuzz/seeds/$t" -- \
    -max_total_time="$seconds" -max_len=1048576 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    > "$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz target $t failed: the crashing input is in fuzz/artifacts/$t/ (full log: $log)" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done )' "$log" >&2 || true
done
