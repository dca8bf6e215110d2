"""Shared fixtures of the Python bindings' tests: the namespace lab (its ground truth, whether this
interpreter runs inside its scanner namespace), the ``rustmap`` binary for comparisons, and a
loopback listener for scans that need no lab.

Lab tests run with the whole interpreter inside the scanner namespace
(``ip netns exec <prefix>-scan python -m pytest``); anywhere else they skip with the reason, or
fail when ``CI=true``. Every packet the suite sends goes to 127.0.0.0/8 or to lab hosts
(198.18.0.0/15, fd00::/8), which exist only inside the lab's namespaces.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PREFIX = os.environ.get("LAB_PREFIX", "rmlab")
SCANNER_NS = f"{PREFIX}-scan"


def current_netns() -> str:
    """The name of the network namespace this process is in ("" when none or unknown)."""
    if shutil.which("ip") is None:
        return ""
    try:
        out = subprocess.run(["ip", "netns", "identify", str(os.getpid())], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip()


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: not skipping)")
    print(f"SKIP: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def ground_truth() -> dict[str, Any]:
    """tests/lab/ground-truth.json."""
    truth: dict[str, Any] = json.loads((REPO / "tests/lab/ground-truth.json").read_text())
    return truth


@pytest.fixture()
def lab(ground_truth: dict[str, Any]) -> dict[str, Any]:
    """The lab's ground truth, when this interpreter runs inside the lab's scanner namespace."""
    ns = current_netns()
    if ns != SCANNER_NS:
        _skip_or_fail(
            f"not inside the lab's scanner namespace {SCANNER_NS} (in {ns or 'the root namespace'}): "
            f"run `LAB_PREFIX={PREFIX} bash tests/lab/lab.sh up` as root, then "
            f"`ip netns exec {SCANNER_NS} python -m pytest`"
        )
    return ground_truth


def truth_host(truth: dict[str, Any], name: str) -> dict[str, Any]:
    """One host of the ground truth by name (``h10``)."""
    for h in truth["hosts"]:
        if h["name"] == name:
            return dict(h)
    raise KeyError(name)


def truth_open_tcp(truth: dict[str, Any], name: str) -> dict[int, str]:
    """The open TCP ports of a lab host, with their services."""
    return {int(p["port"]): str(p["service"]) for p in truth_host(truth, name)["tcp"]["open"]}


@pytest.fixture()
def rustmap_cli() -> str:
    """The ``rustmap`` binary to compare with: $RUSTMAP_BIN, else the workspace's build."""
    candidates = [os.environ.get("RUSTMAP_BIN", "")]
    for target in [os.environ.get("CARGO_TARGET_DIR", ""), str(REPO / "target")]:
        if target:
            candidates += [f"{target}/debug/rustmap", f"{target}/release/rustmap"]
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return c
    _skip_or_fail("no rustmap binary: build it (cargo build -p rustmap-cli) or set RUSTMAP_BIN")
    return ""


def cli_json(binary: str, args: list[str], home: Path) -> dict[str, Any]:
    """A CLI scan's JSON document (``-oJ -``), run here (in this namespace) with its own HOME."""
    env = dict(os.environ, HOME=str(home))
    out = subprocess.run([binary, *args, "--no-db", "-oJ", "-"], capture_output=True, text=True, timeout=300,
                         env=env, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, f"rustmap {args}: {out.stderr}"
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


@pytest.fixture()
def listener() -> Iterator[tuple[int, int]]:
    """A TCP port open on 127.0.0.1 and one that is closed (bound, never listened on), for
    scans that need no lab."""
    open_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    open_sock.bind(("127.0.0.1", 0))
    open_sock.listen(16)
    closed_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed_sock.bind(("127.0.0.1", 0))
    try:
        yield open_sock.getsockname()[1], closed_sock.getsockname()[1]
    finally:
        open_sock.close()
        closed_sock.close()
