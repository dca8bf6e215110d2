"""RustMap from Python: an nmap-class network scanner's scans, results and live events.

::

    import rustmap
    result = rustmap.scan("192.168.1.1", ports="22,80,443", service_detection=True)
    for host in result.hosts:
        print(f"{host.ip} - {host.status}")
        for port in host.ports:
            print(f"  {port.number}/{port.protocol} {port.state} {port.service_name}")

- ``scan(targets, ports=..., service_detection=..., timing=..., **more)`` → ``ScanResult``
- ``await async_scan(...)`` → ``ScanResult``
- ``ScanConfig(targets=[...], ...)``: a configuration checked by the library
- ``stream_scan(config)`` → ``ScanStream``, an async iterator of ``Event`` with ``.cancel()``
- ``parse_targets([...])`` → the addresses the targets expand to
- exceptions in ``rustmap.errors`` (``ConfigError``, ``TargetError``, ``UnsupportedError``, ...)

OS detection (``os_detection=True``, root or CAP_NET_RAW) fills ``host.os_fingerprint`` (the
best guess's name) and ``host.os_matches``. The GIL is released while a scan
runs; Ctrl-C cancels it. docs/python.md in RustMap's repository has the whole guide.
"""

from __future__ import annotations

from . import errors
from ._results import Event, Host, Port, ScanResult, Script, Service
from ._rustmap import version as _version
from ._scan import PARSE_TARGETS_LIMIT, ScanConfig, ScanStream, async_scan, parse_targets, scan, stream_scan
from .errors import (
    ConfigError,
    PrivilegeError,
    RustmapError,
    ScanError,
    TargetError,
    UnknownOptionError,
    UnsupportedError,
)

#: The version of the RustMap library this module was built from.
__version__: str = _version()

__all__ = [
    "scan",
    "async_scan",
    "stream_scan",
    "parse_targets",
    "ScanConfig",
    "ScanStream",
    "ScanResult",
    "Host",
    "Port",
    "Service",
    "Script",
    "Event",
    "PARSE_TARGETS_LIMIT",
    "errors",
    "RustmapError",
    "ConfigError",
    "TargetError",
    "UnsupportedError",
    "PrivilegeError",
    "UnknownOptionError",
    "ScanError",
]
