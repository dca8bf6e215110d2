"""Scans from Python: ``ScanConfig``, ``scan``, ``async_scan``, ``stream_scan`` and
``parse_targets``, over the native sessions of ``rustmap._rustmap``.

Waiting is done in the native module without the GIL. A synchronous scan waits in slices of
``_SLICE`` seconds and comes back to the interpreter in between, which is where Python delivers
``KeyboardInterrupt``: the scan is then cancelled, given ``_CANCEL_GRACE`` seconds to wind down,
and the interrupt goes on up.

The asyncio functions make the same blocking calls from this package's own thread pool
(``_pool``), so the event loop never blocks. Not from RustMap's tokio threads: a thread the
interpreter does not know of, completing an asyncio future while the interpreter shuts down,
crashes the process on exit; the pool's threads are Python threads, joined before shutdown. An
awaited scan is cancelled when its task is (``asyncio.run`` cancels it on Ctrl-C).
"""

from __future__ import annotations

import asyncio
import json
import threading
import warnings
from collections import deque
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional, TypeVar, Union

from . import _rustmap
from ._results import Event, ScanResult

__all__ = ["ScanConfig", "ScanStream", "scan", "async_scan", "stream_scan", "parse_targets", "PARSE_TARGETS_LIMIT"]

#: Seconds a synchronous wait blocks before Python gets a chance to see Ctrl-C.
_SLICE = 0.1
#: Seconds a cancelled scan is given to deliver its last events before the interrupt goes on.
_CANCEL_GRACE = 10.0
#: Seconds one wait of an awaited scan or stream blocks a pool thread (the pool's threads are
#: joined at exit, so this bounds how long exit can wait for them).
_ASYNC_SLICE = 0.5
#: Events taken from the native stream at once.
_BATCH = 256
#: Threads of the pool: scans awaited at once beyond this wait their turn, a slice at a time.
_POOL_THREADS = 64
#: ``parse_targets``' default bound on the number of entries (a /16).
PARSE_TARGETS_LIMIT = 65_536

_T = TypeVar("_T")
_pool_lock = threading.Lock()
_pool_instance: Optional[ThreadPoolExecutor] = None


def _pool() -> ThreadPoolExecutor:
    global _pool_instance
    with _pool_lock:
        if _pool_instance is None:
            # Threads are made on demand and are ordinary Python threads.
            _pool_instance = ThreadPoolExecutor(max_workers=_POOL_THREADS, thread_name_prefix="rustmap")
        return _pool_instance


async def _off_loop(call: Callable[..., _T], *args: Any) -> _T:
    """``call(*args)`` on the pool, awaited without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(_pool(), call, *args)

Targets = Union[str, Sequence[str]]
Timing = Union[int, str]


def _json_value(value: object) -> object:
    # Tuples and sets of targets or ports are lists to the library; anything else JSON cannot
    # carry is refused by json.dumps with a TypeError naming its type.
    if isinstance(value, (tuple, set, frozenset)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"{type(value).__name__} is not an option value (use str, int, float, bool, list or dict)")


class ScanConfig:
    """A checked scan configuration.

    Keyword arguments are the user guide's words (the same as the REST API's request body):

    - ``targets``: addresses, CIDR blocks, nmap ranges or names (a string or a list);
    - ``ports``: as ``-p`` takes them (``"22,80,443"``, ``"1-1000"``, ``"U:53,T:80"``), or an int or a list;
    - ``top_ports``: the N most common ports; ``scan_type``: ``"syn"``, ``"connect"``, ``"udp"``,
      nmap's letters (``"S"``, ``"sT"``, ``"SU"``) or a list of them;
    - ``service_detection``: ``-sV``; ``os_detection``: ``-O`` (raw packets: root or CAP_NET_RAW,
      else ``PrivilegeError``); ``timing``: 0-5, ``"T4"`` or ``"aggressive"``;
    - ``skip_discovery`` (``-Pn``), ``exclude``, ``max_rate``, ``min_rate``, ``open_only`` (``--open``);
    - ``scripts``: as ``--script`` (``"default"``, ``"http-title,ssh-hostkey"``), ``script_args``: as
      ``--script-args`` (``"http-title.url=/admin"``); results in ``port.scripts`` and ``host.scripts``;
    - ``vuln_check``: ``--vuln-check`` (turns on ``-sV``), ``vuln_min_cvss``: ``--vuln-min-cvss``;
      ``geoip``: ``--geoip`` (``geoip={"dir": "/usr/share/GeoIP"}`` names the databases' directory);
    - ``profile``: a built-in or saved profile, laid down first;
    - ``config``: a whole configuration dict in the library's shape;

    and every top-level field of the library's configuration, as a dict in its shape:
    ``discovery={"skip": True}``, ``names={"reverse": "never"}``, ``timing={"max_retries": 2}``,
    ``service={"intensity": 9}``, ``origin=``, ``evasion=``, ``path=``, ``output=``, ``mode=``
    (``"ports"``, ``"ping"``, ``"list"``), ``scan_types=``, ``target_files=``, ... A flat word wins over
    the section of the same name unless its value is a dict. ``ScanConfig.options()`` lists them all.

    The configuration is checked by the library at once: a bad value raises ``ConfigError`` (or a
    subclass) naming the field, an unknown keyword ``UnknownOptionError``. Nothing is printed to the
    terminal unless ``output={"interactive": True}`` or ``{"progress": True}`` asks for it.
    """

    __slots__ = ("_json", "_data", "notes")

    def __init__(self, **options: Any) -> None:
        given = {k: v for k, v in options.items() if v is not None}
        text = json.dumps(given, default=_json_value)
        config_json, notes = _rustmap.build_config(text)
        self._json: str = config_json
        self._data: dict[str, Any] = json.loads(config_json)
        #: What the configuration asks for that this build cannot do (from a profile): the scan runs without it.
        self.notes: list[str] = list(notes)
        for note in self.notes:
            warnings.warn(note, RuntimeWarning, stacklevel=2)

    @staticmethod
    def options() -> list[str]:
        """Every keyword argument ``ScanConfig`` (and ``scan``) accepts."""
        return list(_rustmap.config_fields())

    @property
    def targets(self) -> list[str]:
        """The targets, as given."""
        return [str(t) for t in self._data.get("targets", [])]

    def to_dict(self) -> dict[str, Any]:
        """The whole configuration in the library's shape (what ``rustmap --save-profile`` keeps)."""
        copied: dict[str, Any] = json.loads(self._json)
        return copied

    def to_json(self, indent: Optional[int] = None) -> str:
        """The whole configuration as JSON."""
        return json.dumps(self._data, indent=indent)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ScanConfig) and self._data == other._data

    def __hash__(self) -> int:
        return hash(self._json)

    def __repr__(self) -> str:
        return f"ScanConfig(targets={self.targets!r})"


def _config(targets: Union[Targets, ScanConfig], options: dict[str, Any]) -> ScanConfig:
    if isinstance(targets, ScanConfig):
        given = sorted(k for k, v in options.items() if v is not None)
        if given:
            raise TypeError(f"options {given} given with a ScanConfig: put them in the ScanConfig")
        return targets
    return ScanConfig(targets=targets if isinstance(targets, str) else list(targets), **options)


def scan(
    targets: Union[Targets, ScanConfig],
    ports: Optional[Union[str, int, Sequence[Union[str, int]]]] = None,
    service_detection: Optional[bool] = None,
    timing: Optional[Timing] = None,
    os_detection: Optional[bool] = None,
    **more: Any,
) -> ScanResult:
    """Run a scan and return its result.

    ``targets`` is an address, block, range or name (``"192.168.1.0/24"``, ``"10.0.0.1-5"``), a list
    of them, or a ``ScanConfig`` (then give no other arguments). ``ports`` takes ``-p``'s syntax;
    ``service_detection`` is ``-sV``; ``timing`` is 0-5 or ``"T4"``; ``os_detection`` is ``-O`` (root or
    CAP_NET_RAW, else ``PrivilegeError``). ``**more`` takes every other ``ScanConfig`` keyword
    (``scan_type="connect"``, ``skip_discovery=True``, ``top_ports=100``, ``max_rate=500``, ...).

    Returns a ``ScanResult``: ``result.hosts`` (hosts that are up), each with ``ip``, ``status``,
    ``ports`` (``number``, ``protocol``, ``state``, ``service_name``, ``service``), and
    ``to_dict()`` / ``to_json()`` in the shape of ``rustmap -oJ``.

    The GIL is released while the scan runs. Ctrl-C (``KeyboardInterrupt``) cancels the scan and is
    re-raised once it has stopped. Raises ``ConfigError`` (and subclasses) for a bad configuration,
    ``ScanError`` when the scan cannot start or fails.

    >>> result = rustmap.scan("127.0.0.1", ports="22,80", scan_type="connect")  # doctest: +SKIP
    >>> [(p.number, p.state) for h in result.hosts for p in h.ports]  # doctest: +SKIP
    """
    config = _config(targets, dict(more, ports=ports, service_detection=service_detection, timing=timing,
                                   os_detection=os_detection))
    session = _rustmap.Session(config._json, False)
    try:
        while True:
            out = session.wait_blocking(_SLICE)
            if out is not None:
                return ScanResult(json.loads(out))
    finally:
        if not session.finished:
            # Ctrl-C or another exception while waiting: stop the scan before going on up.
            session.cancel()
            session.wait_blocking(_CANCEL_GRACE)


async def async_scan(
    targets: Union[Targets, ScanConfig],
    ports: Optional[Union[str, int, Sequence[Union[str, int]]]] = None,
    service_detection: Optional[bool] = None,
    timing: Optional[Timing] = None,
    os_detection: Optional[bool] = None,
    **more: Any,
) -> ScanResult:
    """``scan``, as a coroutine: ``result = await rustmap.async_scan("10.0.0.1", timing=4)``.

    Takes the same arguments and returns the same ``ScanResult``. The scan runs on RustMap's own
    threads; the event loop is free meanwhile, so several scans can be awaited at once
    (``asyncio.gather``). Cancelling the awaiting task (as ``asyncio.run`` does on Ctrl-C) cancels
    the scan.
    """
    config = _config(targets, dict(more, ports=ports, service_detection=service_detection, timing=timing,
                                   os_detection=os_detection))
    session = _rustmap.Session(config._json, False)
    try:
        while True:
            out = await _off_loop(session.wait_blocking, _ASYNC_SLICE)
            if out is not None:
                break
    finally:
        if not session.finished:
            session.cancel()
    return ScanResult(json.loads(out))


class ScanStream:
    """A running scan's events, as an async iterator (``async for event in stream``) or a plain one
    (``for event in stream``). Returned by ``stream_scan``.

    Events come as they happen, from ``scan_started`` to ``scan_finished``; ``event.host_result`` is
    set on each finished host that is up. ``cancel()`` stops the scan: the events up to its
    ``scan_finished`` (outcome ``cancelled``) still come. Events wait, unread, in a bounded buffer:
    a scan whose stream is not read pauses (never drops results). Leaving an ``async with`` block,
    or dropping the stream, cancels a scan still running.
    """

    __slots__ = ("_session", "_result", "_buffer", "_ended", "__weakref__")

    def __init__(self, config: ScanConfig) -> None:
        self._session = _rustmap.Session(config._json, True)
        self._result: Optional[ScanResult] = None
        self._buffer: deque[str] = deque()
        self._ended = False

    @property
    def scan_id(self) -> str:
        """The scan's id (a ULID)."""
        return str(self._session.id)

    @property
    def finished(self) -> bool:
        """Whether the scan has ended (its last events may still be unread)."""
        return bool(self._session.finished)

    def cancel(self) -> None:
        """Stop the scan. It ends with ``scan_finished`` (outcome ``cancelled``) and keeps what it found."""
        self._session.cancel()

    def _take(self, events: list[str], ended: bool) -> None:
        self._buffer.extend(events)
        self._ended = ended

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        try:
            while not self._buffer and not self._ended:
                self._take(*await _off_loop(self._session.next_events_blocking, _ASYNC_SLICE, _BATCH))
        except BaseException:
            # The task reading the stream was cancelled (Ctrl-C under asyncio.run): so is the scan.
            self._session.cancel()
            raise
        if not self._buffer:
            raise StopAsyncIteration
        return Event(json.loads(self._buffer.popleft()))

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        try:
            while not self._buffer and not self._ended:
                self._take(*self._session.next_events_blocking(_SLICE, _BATCH))
        except BaseException:
            self._session.cancel()
            raise
        if not self._buffer:
            raise StopIteration
        return Event(json.loads(self._buffer.popleft()))

    async def result(self) -> ScanResult:
        """The whole result, once the scan has ended. Events not read yet are read and dropped
        first (an unread stream would hold the scan up), so call it after the ``async for``."""
        if self._result is None:
            self._buffer.clear()
            while not self._ended:
                self._take(*await _off_loop(self._session.next_events_blocking, _ASYNC_SLICE, _BATCH))
                self._buffer.clear()
            while True:
                out = await _off_loop(self._session.wait_blocking, _ASYNC_SLICE)
                if out is not None:
                    break
            self._result = ScanResult(json.loads(out))
        return self._result

    async def __aenter__(self) -> ScanStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if not self._session.finished:
            self._session.cancel()

    def __repr__(self) -> str:
        return f"ScanStream(scan_id={self.scan_id!r}, finished={self.finished})"


def stream_scan(config: Union[ScanConfig, Targets], **options: Any) -> ScanStream:
    """Start a scan and return its ``ScanStream`` of events.

    ``config`` is a ``ScanConfig``, or targets with the same keyword arguments ``scan`` takes::

        config = rustmap.ScanConfig(targets=["192.168.1.0/24"], service_detection=True, timing=4)
        stream = rustmap.stream_scan(config)
        async for event in stream:
            if event.host_result:
                print(event.host_result.ip, len(event.host_result.ports))

    ``stream.cancel()`` aborts the scan early.
    """
    return ScanStream(_config(config, options))


def parse_targets(
    targets: Targets,
    exclude: Optional[Targets] = None,
    limit: Optional[int] = PARSE_TARGETS_LIMIT,
) -> list[str]:
    """Expand target expressions to the addresses a scan would visit, in order.

    ``rustmap.parse_targets(["192.168.1.0/24", "10.0.0.1-5"])`` gives 261 addresses. Names come
    back unresolved, as given. ``exclude`` leaves addresses out (``--exclude``'s syntax). More than
    ``limit`` entries (65,536 by default, a /16) raises ``TargetError`` rather than building
    millions of strings; pass ``limit=None`` to expand anything. A bad expression raises
    ``TargetError`` naming it.
    """
    items = [targets] if isinstance(targets, str) else list(targets)
    excl = [] if exclude is None else ([exclude] if isinstance(exclude, str) else list(exclude))
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0 or None")
    return list(_rustmap.parse_targets(items, excl, limit))
