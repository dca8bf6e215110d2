"""The bindings without the lab: configuration and its errors, target expansion, result and
event objects, and scans of 127.0.0.1 (connect scans, so they need no privilege)."""

from __future__ import annotations

import asyncio
import json
import pydoc
import threading
import time

import pytest

import rustmap
from rustmap import errors

from .conftest import REPO


def loopback(ports: str, **more: object) -> rustmap.ScanConfig:
    return rustmap.ScanConfig(targets="127.0.0.1", ports=ports, scan_type="connect", skip_discovery=True,
                              names={"reverse": "never"}, **more)


# ------------------------------------------------------------------------------------ parse_targets

def test_parse_targets_expands_the_guides_example() -> None:
    hosts = rustmap.parse_targets(["192.168.1.0/24", "10.0.0.1-5"])
    assert len(hosts) == 261
    assert hosts[0] == "192.168.1.0" and hosts[255] == "192.168.1.255"
    assert hosts[256:] == [f"10.0.0.{i}" for i in range(1, 6)]


def test_parse_targets_excludes_keeps_names_and_ipv6() -> None:
    assert rustmap.parse_targets("10.0.0.0/30", exclude="10.0.0.1") == ["10.0.0.0", "10.0.0.2", "10.0.0.3"]
    assert rustmap.parse_targets(["scanme.example", "fd00::/126"]) == [
        "scanme.example", "fd00::", "fd00::1", "fd00::2", "fd00::3"]


def test_parse_targets_is_bounded() -> None:
    with pytest.raises(rustmap.TargetError) as e:
        rustmap.parse_targets("10.0.0.0/8")
    assert "65536" in str(e.value) and "limit=None" in str(e.value)
    with pytest.raises(rustmap.TargetError):
        rustmap.parse_targets("10.0.0.0/24", limit=10)
    assert len(rustmap.parse_targets("10.0.0.0/24", limit=256)) == 256
    assert len(rustmap.parse_targets("10.0.0.0/15", limit=None)) == 131072


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "10.0.0.300", "1.2.3.4-1", ""])
def test_bad_targets_raise_target_error(bad: str) -> None:
    with pytest.raises(rustmap.TargetError) as e:
        rustmap.parse_targets([bad, "10.0.0.1"]) if bad else rustmap.scan(bad, ports="80")
    assert isinstance(e.value, rustmap.ConfigError) and isinstance(e.value, ValueError)
    assert e.value.field == "targets"


# --------------------------------------------------------------------------------------- ScanConfig

def test_config_takes_the_flat_words_and_every_section() -> None:
    c = rustmap.ScanConfig(targets=["127.0.0.1"], ports=[22, "80-81"], service_detection=True, timing="T4",
                           scan_type="sT", skip_discovery=True, discovery={"skip": True},
                           names={"reverse": "never"}, top_ports=None)
    d = c.to_dict()
    assert d["targets"] == ["127.0.0.1"]
    assert d["ports"]["spec"] == "22,80-81"
    assert d["service"]["enabled"] is True
    assert d["timing"]["template"] == 4
    assert d["scan_types"] == ["connect"]
    assert d["discovery"]["skip"] is True and d["names"]["reverse"] == "never"
    # Nothing is printed by a library unless asked.
    assert d["output"]["interactive"] is False and d["output"]["progress"] is False
    assert json.loads(c.to_json()) == d
    assert rustmap.ScanConfig(targets="127.0.0.1", ports={"spec": "7"}).to_dict()["ports"]["spec"] == "7"
    assert rustmap.ScanConfig(targets="127.0.0.1", timing={"max_retries": 2}).to_dict()["timing"]["max_retries"] == 2
    assert "discovery" in rustmap.ScanConfig.options() and "service_detection" in rustmap.ScanConfig.options()


@pytest.mark.parametrize(
    ("options", "exc", "field"),
    [
        ({"timing": 9}, rustmap.ConfigError, "timing"),
        ({"timing": "fast"}, rustmap.ConfigError, "timing"),
        ({"scan_type": "Q"}, rustmap.ConfigError, "scan_type"),
        ({"ports": "70000"}, rustmap.ConfigError, "ports.spec"),
        ({"service_detection": "yes"}, rustmap.ConfigError, "service_detection"),
        ({"discovery": {"skp": True}}, rustmap.ConfigError, "discovery"),
        ({"max_rate": -5.0}, rustmap.ConfigError, "timing.max_rate"),
        ({"profile": "no-such-profile"}, rustmap.ConfigError, "profile"),
        ({"exclude": "10.0.0.0/40"}, rustmap.TargetError, "exclude"),
    ],
)
def test_bad_values_raise_the_mapped_exception_naming_the_field(options: dict[str, object], exc: type,
                                                                field: str) -> None:
    with pytest.raises(exc) as e:
        rustmap.ScanConfig(targets="127.0.0.1", **options)
    assert e.value.field == field, e.value
    assert isinstance(e.value, rustmap.RustmapError) and e.value.message


def test_os_detection_without_raw_sockets_is_refused_naming_why() -> None:
    # -O sends raw packets: unprivileged it is a PrivilegeError, never silently skipped.
    with pytest.raises(rustmap.PrivilegeError) as e:
        rustmap.ScanConfig(targets="127.0.0.1", os_detection=True, origin={"privileged": False})
    assert e.value.field == "os.enabled" and "raw packets" in str(e.value)
    assert e.value.kind == "privilege"
    # os_detection=False is fine.
    rustmap.ScanConfig(targets="127.0.0.1", os_detection=False)


def test_unknown_keywords_are_an_error_naming_them() -> None:
    with pytest.raises(rustmap.UnknownOptionError) as e:
        rustmap.ScanConfig(targets="127.0.0.1", servic_detection=True, speed=3)
    assert isinstance(e.value, TypeError)
    assert '"servic_detection"' in str(e.value) and '"speed"' in str(e.value)
    with pytest.raises(rustmap.UnknownOptionError):
        rustmap.scan("127.0.0.1", ports="80", fast=True)
    with pytest.raises(TypeError):
        rustmap.scan(rustmap.ScanConfig(targets="127.0.0.1"), ports="80")


def test_missing_targets_and_privilege_errors() -> None:
    with pytest.raises(rustmap.ConfigError) as e:
        rustmap.ScanConfig(ports="80")
    assert e.value.kind == "missing"
    assert errors.PrivilegeError.__mro__[1] is errors.ConfigError


def test_a_scan_that_cannot_start_raises_scan_error() -> None:
    # A SOCKS5 proxy on a closed loopback port: checked at start, before anything is sent.
    with pytest.raises(rustmap.ScanError) as e:
        rustmap.scan("127.0.0.1", ports="80", scan_type="connect", origin={"proxy": "socks5://127.0.0.1:1"})
    assert e.value.kind == "start" and "unreachable" in str(e.value)
    assert isinstance(e.value, RuntimeError) and not isinstance(e.value, rustmap.ConfigError)
    with pytest.raises(rustmap.ConfigError) as c:
        rustmap.scan("127.0.0.1", ports="80", origin={"interface": "nosuch0"})
    assert c.value.field == "origin.interface"


def test_exceptions_pickle_with_their_fields() -> None:
    import pickle

    e = rustmap.UnsupportedError("m", "os_detection", "true", "unsupported")
    back = pickle.loads(pickle.dumps(e))
    assert (type(back), back.field, back.value, back.kind, str(back)) == (
        rustmap.UnsupportedError, "os_detection", "true", "unsupported", "m")


# -------------------------------------------------------------------------------- scans of loopback

def test_scan_of_loopback_finds_the_open_and_closed_ports(listener: tuple[int, int]) -> None:
    open_port, closed_port = listener
    result = rustmap.scan("127.0.0.1", ports=f"{open_port},{closed_port}", scan_type="connect",
                          skip_discovery=True, names={"reverse": "never"})
    assert result.completed and result.outcome == "completed"
    assert [h.ip for h in result.hosts] == ["127.0.0.1"]
    host = result.hosts[0]
    assert host.status == "up" and host.os_fingerprint is None and host.os_matches == []
    states = {p.number: (p.protocol, p.state) for p in host.ports}
    closed = host.port(closed_port) or {e["state"]: e["count"] for e in host.extraports}
    assert states[open_port] == ("tcp", "open")
    assert closed, "the closed port is shown or folded"
    assert host.open_ports == [host.port(open_port)]
    # to_dict / to_json give the library's shape, and objects rebuilt from it are equal.
    d = result.to_dict()
    assert json.loads(result.to_json()) == d
    assert rustmap.ScanResult(d) == result
    assert d["hosts"][0]["addr"] == "127.0.0.1" and d["stats"]["completed"] is True
    assert rustmap.Host(host.to_dict()) == host


def test_async_and_stream_scans_match_the_sync_scan(listener: tuple[int, int]) -> None:
    open_port, closed_port = listener
    config = loopback(f"{open_port},{closed_port}")
    sync = rustmap.scan(config)

    async def both() -> tuple[rustmap.ScanResult, list[rustmap.Event]]:
        r = await rustmap.async_scan(config)
        events = [ev async for ev in rustmap.stream_scan(config)]
        return r, events

    awaited, events = asyncio.run(both())
    shape = lambda hosts: [(h.ip, h.status, [(p.number, p.state) for p in h.ports]) for h in hosts]  # noqa: E731
    assert shape(awaited.hosts) == shape(sync.hosts)
    assert events[0].kind == "scan_started" and events[0].scan_id
    assert events[-1].kind == "scan_finished" and events[-1].stats and events[-1].stats["completed"]
    streamed = [e.host_result for e in events if e.host_result]
    assert shape(streamed) == shape(sync.hosts)
    found = [e.port for e in events if e.kind == "port_found"]
    assert any(p is not None and p.number == open_port and p.state == "open" for p in found)
    # The plain iterator gives the same.
    plain = list(rustmap.stream_scan(config))
    assert [e.kind for e in plain if e.kind in ("scan_started", "host_done", "scan_finished")] == [
        e.kind for e in events if e.kind in ("scan_started", "host_done", "scan_finished")]


def test_stream_result_without_reading_the_events(listener: tuple[int, int]) -> None:
    open_port, _ = listener

    async def run() -> rustmap.ScanResult:
        stream = rustmap.stream_scan(loopback(str(open_port)))
        return await asyncio.wait_for(stream.result(), 60)

    result = asyncio.run(run())
    assert result.completed and result.hosts[0].port(open_port) is not None


def test_two_scans_at_once_from_asyncio(listener: tuple[int, int]) -> None:
    open_port, closed_port = listener

    async def two() -> list[rustmap.ScanResult]:
        return list(await asyncio.gather(
            rustmap.async_scan(loopback(str(open_port))),
            rustmap.async_scan(loopback(f"{closed_port},{open_port}", timing=4)),
        ))

    a, b = asyncio.run(two())
    assert a.scan_id != b.scan_id
    for r in (a, b):
        assert r.completed
        h = r.host("127.0.0.1")
        assert h is not None and h.port(open_port) is not None and h.port(open_port).state == "open"  # type: ignore[union-attr]


def slow_loopback() -> rustmap.ScanConfig:
    # Every port of loopback at 200 probes a second: over five minutes if nothing stops it.
    return loopback("1-65535", max_rate=200.0)


def test_cancel_mid_scan_stops_it_and_keeps_what_it_found() -> None:
    async def run() -> tuple[list[rustmap.Event], float]:
        stream = rustmap.stream_scan(slow_loopback())
        seen: list[rustmap.Event] = []
        t0 = time.monotonic()
        cancelled_at = 0.0
        async for ev in stream:
            seen.append(ev)
            if not cancelled_at and time.monotonic() - t0 > 0.5:
                stream.cancel()
                cancelled_at = time.monotonic()
            assert time.monotonic() - t0 < 60, "the scan did not stop"
            if not cancelled_at and ev.kind == "scan_started":
                await asyncio.sleep(0.6)
        result = await stream.result()
        assert result.outcome == "cancelled" and not result.completed
        return seen, time.monotonic() - cancelled_at

    events, after_cancel = asyncio.run(run())
    assert events[-1].kind == "scan_finished"
    assert events[-1].stats and events[-1].stats["outcome"]["status"] == "cancelled"
    assert after_cancel < 10, f"the scan took {after_cancel:.1f} s to stop"


def test_async_scan_is_cancelled_with_its_task() -> None:
    async def run() -> float:
        task = asyncio.ensure_future(rustmap.async_scan(slow_loopback()))
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0

    assert asyncio.run(run()) < 5


SLOW = ("'127.0.0.1', ports='1-65535', scan_type='connect', skip_discovery=True, max_rate=200.0, "
        "names={'reverse': 'never'}")
CTRL_C_PROGRAMS = {
    "sync": f"rustmap.scan({SLOW})",
    "async": f"asyncio.run(rustmap.async_scan({SLOW}))",
    "stream": "async def read():\n"
              f"    async for ev in rustmap.stream_scan({SLOW}):\n"
              "        pass\n"
              "asyncio.run(read())",
}


@pytest.mark.parametrize("mode", sorted(CTRL_C_PROGRAMS))
def test_ctrl_c_cancels_the_scan(mode: str) -> None:
    import signal
    import subprocess
    import sys

    code = (
        "import asyncio, rustmap, sys\n"
        "print('go', flush=True)\n"
        "try:\n"
        + "".join(f"    {line}\n" for line in CTRL_C_PROGRAMS[mode].splitlines())
        + "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    sys.exit(3)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "go"
        time.sleep(1.5)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        rc = p.wait(timeout=30)
        assert time.monotonic() - t0 < 15
        assert rc == 3 and "interrupted" in p.stdout.read(), p.stderr.read() if p.stderr else ""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)


def test_the_gil_is_released_while_a_scan_runs() -> None:
    def count(seconds: float) -> int:
        n, end = 0, time.monotonic() + seconds
        while time.monotonic() < end:
            n += 1
        return n

    alone = count(0.5)
    done = threading.Event()

    def scan() -> None:
        try:
            rustmap.scan(loopback("1-400", max_rate=400.0))
        finally:
            done.set()

    t = threading.Thread(target=scan)
    t.start()
    try:
        time.sleep(0.1)
        beside = count(0.5)
        assert not done.is_set(), "the scan should take about a second"
    finally:
        t.join(timeout=60)
    # A held GIL would leave this thread a few percent of its speed.
    assert beside > alone * 0.4, (alone, beside)


# --------------------------------------------------------------------------------------- docs, types

def test_help_is_useful() -> None:
    text = pydoc.render_doc(rustmap.scan, renderer=pydoc.plaintext)
    for word in ("targets", "service_detection", "timing", "os_detection", "Ctrl-C", "GIL", "ScanResult",
                 "PrivilegeError"):
        assert word in text, word
    assert "stream.cancel()" in pydoc.render_doc(rustmap.stream_scan, renderer=pydoc.plaintext)
    assert "discovery" in (rustmap.ScanConfig.__doc__ or "")
    assert rustmap.__version__ and rustmap.__doc__ and "os_detection" in rustmap.__doc__


def test_the_package_ships_its_type_information() -> None:
    import rustmap as pkg

    root = __import__("pathlib").Path(pkg.__file__).parent
    assert (root / "py.typed").exists() and (root / "_rustmap.pyi").exists()
    assert (REPO / "rustmap-python" / "tests" / "typing_check.py").exists()
