#!/usr/bin/env bash
# RustMap's whole test suite, from a fresh Debian machine with a Rust toolchain:
#   installs what the tests need (Debian packages for the lab, rustfmt/clippy), checks formatting,
#   lints and docs, runs every fuzz target briefly (fuzz/run-long.sh --each 10s), builds the
#   namespace lab, runs every test (the `wasm` and `cloud` features' too), and tears the lab
#   down again.
# Run as root (the lab needs network namespaces). Unprivileged, the lab tests skip with a reason —
# unless CI=true, where a missing lab is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then
  step "installing test dependencies (Debian packages)"
  bash tests/lab/install-deps.sh
else
  echo "run-all.sh: not root: the network lab cannot be built; lab tests will skip" >&2
fi

step "toolchain components"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi

# cargo-deb builds the Debian package in crates/cli/tests/package.rs (about 2 minutes to install,
# once per machine; the test itself packages the debug binary it already has, ~15 s).
if ! cargo deb --version >/dev/null 2>&1; then
  step "cargo install cargo-deb"
  cargo install --locked cargo-deb --version 3.8.0
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
# WASM scripts sit behind a feature (docs/wasm-scripts.md): checked and tested on their own.
cargo clippy -p rustmap-script --all-targets --features wasm --locked -- -D warnings

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

# The fuzzing gate: every cargo-fuzz target in fuzz/ runs briefly (FUZZ_SECONDS each, 10 by
# default; two at a time on two cores); a crash, timeout or out-of-memory input fails the run and
# is printed. cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP=1 on the stable toolchain (set
# by the script). The build goes to a target directory outside the clone, so that later runs on
# the same machine reuse it. Long runs: fuzz/run-long.sh 2h (docs/fuzzing.md).
if ! cargo fuzz --version >/dev/null 2>&1; then
  step "cargo install cargo-fuzz"
  cargo install --locked cargo-fuzz --version 0.13.2
fi
step "fuzz targets (${FUZZ_SECONDS:-10} s each)"
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-${HOME:-/root}/.cache/rustmap/fuzz-target}" \
  FUZZ_SUMMARY="${TMPDIR:-/tmp}/rustmap-fuzz-summary.tsv" \
  bash fuzz/run-long.sh --each "${FUZZ_SECONDS:-10}"

if [ "$(id -u)" -eq 0 ]; then
  step "building the lab"
  export LAB_PREFIX="${LAB_PREFIX:-rmlab}"
  trap 'bash tests/lab/lab.sh down >/dev/null 2>&1 || true' EXIT
  bash tests/lab/lab.sh up
fi

step "cargo test"
cargo test --workspace --locked
cargo test -p rustmap-script --features wasm --locked --test wasm
cargo test -p rustmap-cli --features wasm --locked --test lab_scripts

# Cloud discovery with AWS needs the AWS SDK (minutes of build), behind the `cloud` feature
# (docs/cloud.md): linted and tested on its own, in a target directory outside the clone that
# later runs on the same machine reuse. lab_cloud runs moto_server in the lab.
step "cloud feature (AWS SDK): clippy, tests, the moto lab test"
CLOUD_TARGET_DIR="${CLOUD_TARGET_DIR:-${HOME:-/root}/.cache/rustmap/cloud-target}"
CARGO_TARGET_DIR="$CLOUD_TARGET_DIR" cargo clippy -p rustmap-cloud --all-targets --features aws,fixture --locked -- -D warnings
CARGO_TARGET_DIR="$CLOUD_TARGET_DIR" cargo clippy -p rustmap-cli --all-targets --features cloud --locked -- -D warnings
CARGO_TARGET_DIR="$CLOUD_TARGET_DIR" cargo test -p rustmap-cloud --features aws,fixture --locked
CARGO_TARGET_DIR="$CLOUD_TARGET_DIR" cargo test -p rustmap-cli --features cloud --locked --test lab_cloud --test cloud_rest

# The Python bindings (rustmap-python/, outside the workspace): tests/python.sh formats and lints
# the crate, builds the extension, runs mypy and the pytest suite (in the lab's scanner namespace
# when root, like cargo test; docs/python.md § Development).
step "python bindings: fmt, clippy, maturin develop, mypy, pytest"
bash tests/python.sh
