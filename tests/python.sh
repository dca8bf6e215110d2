#!/usr/bin/env bash
# The Python bindings' checks (rustmap-python/, outside the cargo workspace), as tests/run-all.sh
# runs them after cargo test, with the lab up:
#   1. cargo fmt --check and clippy -D warnings on the crate;
#   2. maturin develop (debug: a fraction of a release build's time) into a virtualenv of pinned
#      tools (tests/python-venv.sh), with a target directory outside the clone that later runs
#      on the same machine reuse;
#   3. mypy (strict) on the package and rustmap-python/tests/typing_check.py;
#   4. pytest, inside the lab's scanner namespace when root (its lab tests need the lab; elsewhere
#      they skip, and fail with CI=true), comparing with the CLI binary cargo test built.
# Env: RUSTMAP_PY_VENV (the virtualenv), PY_TARGET_DIR (the extension's target directory),
# LAB_PREFIX (default rmlab), RUSTMAP_BIN (default: target/debug/rustmap).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then
  PY_VENV="${RUSTMAP_PY_VENV:-/opt/rustmap-lab/pyvenv}"
else
  PY_VENV="${RUSTMAP_PY_VENV:-${TMPDIR:-/tmp}/rustmap-pyvenv}"
fi
bash tests/python-venv.sh "$PY_VENV"
PY_TARGET="${PY_TARGET_DIR:-${HOME:-/root}/.cache/rustmap/py-target}"
RUSTMAP_BIN="${RUSTMAP_BIN:-$(pwd)/${CARGO_TARGET_DIR:-target}/debug/rustmap}"
case $RUSTMAP_BIN in /*) ;; *) RUSTMAP_BIN="$(pwd)/$RUSTMAP_BIN" ;; esac
export RUSTMAP_BIN
NS="${LAB_PREFIX:-rmlab}-scan"

cd rustmap-python
cargo fmt -- --check
CARGO_TARGET_DIR="$PY_TARGET" cargo clippy --locked --all-targets -- -D warnings
VIRTUAL_ENV="$PY_VENV" PATH="$PY_VENV/bin:$PATH" CARGO_TARGET_DIR="$PY_TARGET" maturin develop --locked
"$PY_VENV/bin/mypy"
if [ "$(id -u)" -eq 0 ] && ip netns list 2>/dev/null | grep -q "^$NS\b"; then
  LAB_PREFIX="${LAB_PREFIX:-rmlab}" ip netns exec "$NS" "$PY_VENV/bin/python" -m pytest -rs tests
else
  "$PY_VENV/bin/python" -m pytest -rs tests
fi

# `pip install rustmap-python/` as docs/python.md gives it: a wheel built from source by pip
# (maturin as its build backend; a debug profile and the shared target directory keep it quick),
# installed into a fresh virtualenv, scanning loopback with no `rustmap` binary on PATH.
cd ..
WHEEL_VENV=$(mktemp -d)
trap 'rm -rf "$WHEEL_VENV"' EXIT
"$PY_VENV/bin/python" -m venv "$WHEEL_VENV"
CARGO_TARGET_DIR="$PY_TARGET" MATURIN_PEP517_ARGS="--profile dev" \
  "$WHEEL_VENV/bin/pip" install -q --disable-pip-version-check rustmap-python/
(
  cd "$WHEEL_VENV"
  env -i PATH=/usr/bin:/bin HOME="$WHEEL_VENV" "$WHEEL_VENV/bin/python" - <<'PY'
import shutil, socket
import rustmap
assert shutil.which("rustmap") is None, "a rustmap binary is on PATH"
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
port = listener.getsockname()[1]
result = rustmap.scan("127.0.0.1", ports=str(port), skip_discovery=True, scan_type="T",
                      names={"reverse": "never"})
states = [(p.number, p.state) for h in result.hosts for p in h.ports]
assert states == [(port, "open")], states
print(f"wheel from pip install rustmap-python/: scan of 127.0.0.1:{port} -> open, no rustmap binary on PATH")
PY
)
