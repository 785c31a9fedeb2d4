#!/usr/bin/env bash
# Installs cargo-fuzz into ~/.cache/fleetgate/cargo-fuzz-<version>/ (built once, then reused) and
# prints the path of the `cargo-fuzz` binary. Called by `scripts/fuzz.sh`.
set -euo pipefail
CARGO_FUZZ_VERSION="${CARGO_FUZZ_VERSION:-0.13.2}"
CACHE="${FLEETGATE_CACHE:-$HOME/.cache/fleetgate}"
root="$CACHE/cargo-fuzz-$CARGO_FUZZ_VERSION"
if [ ! -x "$root/bin/cargo-fuzz" ]; then
  printf '[fuzz %s] installing cargo-fuzz %s into %s (first run only, a few minutes)\n' \
    "$(date +%H:%M:%S)" "$CARGO_FUZZ_VERSION" "$root" >&2
  cargo install --locked --quiet --root "$root.tmp" --version "$CARGO_FUZZ_VERSION" cargo-fuzz >&2
  rm -rf "$root" && mv "$root.tmp" "$root"
fi
echo "$root/bin/cargo-fuzz"
