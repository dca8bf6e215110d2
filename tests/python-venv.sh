#!/usr/bin/env bash
# The virtualenv of the Python bindings' tests (rustmap-python/): maturin to build the extension,
# pytest to run the suite, mypy to check the types. Pinned; idempotent (a stamp file holds the
# pins it was made with, so a change of pins remakes it). Never touches the system's Python.
#   tests/python-venv.sh [DIR]      (default /opt/rustmap-lab/pyvenv)
set -euo pipefail
DIR=${1:-/opt/rustmap-lab/pyvenv}
PINS="maturin==1.16.0 pytest==9.2.0 mypy==2.4.1"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
if [ -x "$DIR/bin/python" ] && [ "$(cat "$DIR/.rustmap-pins" 2>/dev/null)" = "$PINS" ]; then
  exit 0
fi
echo "python-venv.sh: creating $DIR with $PINS"
rm -rf "$DIR"
mkdir -p "$(dirname "$DIR")"
"$PY" -m venv "$DIR"
# shellcheck disable=SC2086 # the pins are separate words
"$DIR/bin/pip" install -q --disable-pip-version-check $PINS
"$DIR/bin/python" -c 'import pytest, mypy' && "$DIR/bin/maturin" --version >/dev/null
echo "$PINS" > "$DIR/.rustmap-pins"
