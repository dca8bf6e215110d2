"""The bindings against the namespace lab (tests/lab/lab.sh): the user guide's four examples
(read from docs/python.md, lab targets in place of the addresses), the same scan through sync,
async, streaming and the CLI, the first host streamed before a sweep ends, cancel mid-scan, bad
targets, and two scans at once. Every test takes the ``lab`` fixture: outside the lab's scanner
namespace they skip with the reason (fail with CI=true)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import rustmap
from rustmap import errors

from .conftest import REPO, cli_json, truth_host, truth_open_tcp

H10, H11, H14 = "198.18.0.10", "198.18.0.11", "198.18.0.14"
LAN = "198.18.0.0/24"


def guide_examples() -> dict[str, str]:
    """The guide's Python examples, as docs/python.md has them, by name."""
    text = (REPO / "docs/python.md").read_text()
    found = dict(re.findall(r"<!-- example: (\w+) -->\n```python\n(.*?)```", text, flags=re.S))
    assert set(found) == {"sync", "async", "stream", "targets"}, found.keys()
    return found


def run_python(code: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run a program with this interpreter (so inside this namespace), printing what it printed."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                         stdin=subprocess.DEVNULL)
    print(out.stdout)
    print(out.stderr, file=sys.stderr)
    return out


def shape(hosts: list[dict[str, Any]]) -> dict[str, tuple[dict[tuple[str, int], str], dict[str, int]]]:
    """Hosts as what must agree between two runs of one scan: each shown port's state, and the
    folded ports' counts by state."""
    return {
        h["addr"]: (
            {(p["protocol"], int(p["port"])): p["state"] for p in h["ports"]},
            {e["state"]: int(e["count"]) for e in h["extraports"]},
        )
        for h in hosts
    }


# ---------------------------------------------------------------------------------- the guide

def test_guide_sync_example_prints_the_labs_open_ports_and_services(lab: dict[str, Any]) -> None:
    code = guide_examples()["sync"].replace('"192.168.1.1"', f'"{H10}"')
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert f"{H10} - up" in out.stdout
    # Service detection's names (ground truth's sv_name where it has one: 443 is http over TLS).
    truth = {int(p["port"]): p.get("sv_name", p["service"]) for p in truth_host(lab, "h10")["tcp"]["open"]}
    for port in (22, 80, 443):
        assert f"  {port}/tcp open {truth[port]}" in out.stdout, (port, out.stdout)


def test_guide_async_example_prints_the_os(lab: dict[str, Any]) -> None:
    code = "import rustmap\n" + guide_examples()["async"].replace('"10.0.0.1"', f'"{H10}"')
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    # h10 runs the lab machine's Linux kernel: the built-in database's Linux entry.
    assert out.stdout.strip() == f"{H10}: Linux 4.10 - 6.x", out.stdout
    # Without os_detection the fingerprint is None.
    out = run_python(code.replace(", os_detection=True", ""))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{H10}: None"


def test_guide_stream_example_prints_every_host_up(lab: dict[str, Any]) -> None:
    code = "import asyncio, rustmap\n" + guide_examples()["stream"].replace('"192.168.1.0/24"', f'"{LAN}"')
    out = run_python(code, timeout=600)
    assert out.returncode == 0, out.stderr
    printed = dict(re.findall(r"^Host: (\S+) \((\d+) ports\)$", out.stdout, flags=re.M))
    assert set(printed) == set(lab["ping_sweep"]["up"]), out.stdout
    assert int(printed[H10]) >= 10 and int(printed[H11]) >= 2


def test_guide_targets_example(lab: dict[str, Any]) -> None:
    code = "import rustmap\n" + guide_examples()["targets"].replace('"192.168.1.0/24"', f'"{LAN}"').replace(
        '"10.0.0.1-5"', '"198.18.1.1-5"')
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Total targets: 261"


# ------------------------------------------------------------------------- the same scan, four ways

PORTS = "21,22,25,53,80,110,111,113,139,143,443,445,2222,8080,8081,9999"
TARGETS = "198.18.0.10-14"


def test_sync_async_stream_and_the_cli_agree(lab: dict[str, Any], rustmap_cli: str, tmp_path: Path) -> None:
    options: dict[str, Any] = dict(ports=PORTS, timing=4, names={"reverse": "never"})
    sync = rustmap.scan(TARGETS, **options)

    async def other_two() -> tuple[rustmap.ScanResult, list[rustmap.Host]]:
        awaited = await rustmap.async_scan(TARGETS, **options)
        streamed = [ev.host_result async for ev in rustmap.stream_scan(TARGETS, **options) if ev.host_result]
        return awaited, streamed

    awaited, streamed = asyncio.run(other_two())
    cli = cli_json(rustmap_cli, ["-n", "-T4", "-p", PORTS, TARGETS], tmp_path)
    want = shape(cli["hosts"])
    assert set(want) == {H10, H11, "198.18.0.12", "198.18.0.13", H14}
    assert shape(sync.to_dict()["hosts"]) == want
    assert shape(awaited.to_dict()["hosts"]) == want
    assert shape([h.to_dict() for h in streamed]) == want
    # And the lab's truth: h10's open ports among those asked.
    asked = {int(p) for p in PORTS.split(",")}
    h10 = sync.host(H10)
    assert h10 is not None
    assert {p.number for p in h10.open_ports} == asked & set(truth_open_tcp(lab, "h10"))


def test_stream_yields_the_first_host_before_the_sweep_ends(lab: dict[str, Any]) -> None:
    async def run() -> tuple[bool, float, float, int]:
        # The LAN, and a routed /24 whose dead addresses take discovery's timeouts.
        stream = rustmap.stream_scan([LAN, "198.18.2.0/24"], ports="22,80", timing=4, names={"reverse": "never"})
        t0 = time.monotonic()
        first_at, finished_then, hosts = 0.0, True, 0
        async for ev in stream:
            assert time.monotonic() - t0 < 300
            if ev.host_result:
                hosts += 1
                if not first_at:
                    first_at, finished_then = time.monotonic() - t0, stream.finished
        return finished_then, first_at, time.monotonic() - t0, hosts

    finished, first, total, hosts = asyncio.run(run())
    print(f"first host after {first:.3f} s, scan over after {total:.3f} s")
    assert hosts >= len(lab["ping_sweep"]["up"]) + 1, "the LAN's hosts and h20"
    assert not finished, "the scan had ended before its first host was read"
    assert first < total / 2, (first, total)


def test_cancel_mid_scan_of_the_lab(lab: dict[str, Any]) -> None:
    async def run() -> tuple[rustmap.ScanResult, float]:
        stream = rustmap.stream_scan(LAN, ports="1-65535", timing=4, names={"reverse": "never"})
        t0 = time.monotonic()
        cancelled_at: list[float] = []

        def cancel() -> None:
            stream.cancel()
            cancelled_at.append(time.monotonic())

        async for ev in stream:
            assert time.monotonic() - t0 < 120, "the scan did not stop"
            # Mid-scan: a second after the sweep found its first open port.
            if ev.kind == "first_open_port":
                asyncio.get_running_loop().call_later(1.0, cancel)
        assert cancelled_at, "the scan ended before it was cancelled"
        return await stream.result(), time.monotonic() - cancelled_at[0]

    result, stop_secs = asyncio.run(run())
    print(f"stopped {stop_secs:.2f} s after cancel with {len(result.hosts)} hosts")
    assert result.outcome == "cancelled" and not result.completed
    assert stop_secs < 15
    # Hosts cut short are still reported, with what was found: fewer ports than a whole scan.
    scanned = sum(len(h.ports) + sum(int(e["count"]) for e in h.extraports) for h in result.hosts)
    assert result.hosts and scanned < 65535 * len(lab["ping_sweep"]["up"])


@pytest.mark.parametrize("bad", ["198.18.0.0/33", "198.18.0.256", "198.18.0.5-2", "fd00::/129"])
def test_bad_targets_raise_the_mapped_exception(lab: dict[str, Any], bad: str) -> None:
    with pytest.raises(rustmap.TargetError) as e:
        rustmap.scan([H10, bad], ports="22")
    assert e.value.field == "targets" and e.value.kind == "invalid", e.value


def test_two_scans_at_once_from_asyncio(lab: dict[str, Any]) -> None:
    async def two() -> tuple[list[rustmap.ScanResult], float]:
        t0 = time.monotonic()
        results = await asyncio.gather(
            rustmap.async_scan(H10, ports="1-1024", timing=4, names={"reverse": "never"}),
            rustmap.async_scan(H14, ports="1-1024", timing=4, names={"reverse": "never"}),
        )
        return list(results), time.monotonic() - t0

    (a, b), secs = asyncio.run(two())
    print(f"two scans in {secs:.2f} s")
    for result, name, ip in ((a, "h10", H10), (b, "h14", H14)):
        host = result.host(ip)
        assert host is not None, result
        want = {p for p in truth_open_tcp(lab, name) if p <= 1024}
        assert {p.number for p in host.open_ports} == want


# ------------------------------------------------------------------------------------- scripts

def test_scripts_run_from_python_and_their_results_are_on_the_ports(lab: dict[str, Any]) -> None:
    result = rustmap.scan(H10, ports="22,80", service_detection=True, scripts="http-title,ssh-hostkey",
                          scan_type="connect", names={"reverse": "never"})
    host = result.hosts[0]
    by_port = {p.number: {s.id: s for s in p.scripts} for p in host.ports}
    assert by_port[80]["http-title"].output == "RustMap lab h10.lab.test", by_port
    keys = by_port[22]["ssh-hostkey"]
    assert "(ED25519)" in keys.output and "(ECDSA)" in keys.output, keys.output
    assert any(k.endswith(".type") and v == "ssh-ed25519" for k, v in keys.elements), keys.elements
    with pytest.raises(errors.ConfigError) as bad:
        rustmap.scan(H10, ports="80", scripts="no-such-script")
    assert bad.value.field == "scripts.select"


# ------------------------------------------------------------------------ vulnerabilities

def test_vuln_check_from_python_puts_cves_on_the_ports(lab: dict[str, Any], tmp_path: Path) -> None:
    # A database path with no file: the bundled seed rules alone, whatever HOME holds.
    result = rustmap.scan(H10, ports="22", vuln_min_cvss=9, scan_type="connect", names={"reverse": "never"},
                          vuln={"db": str(tmp_path / "none.db")})
    port = result.hosts[0].ports[0]
    ids = [v["id"] for v in port.vulnerabilities]
    assert "CVE-2023-38408" in ids, ids
    assert all(v["cvss"] >= 9 for v in port.vulnerabilities), port.vulnerabilities
    assert any(s.id == "vulners" for s in port.scripts)
    with pytest.raises(errors.ConfigError) as bad:
        rustmap.scan(H10, ports="22", vuln_min_cvss=12)
    assert bad.value.field == "vuln.min_cvss"
