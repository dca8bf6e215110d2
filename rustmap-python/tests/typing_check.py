"""Checked by mypy (``mypy`` in rustmap-python/, strict), never run: the user guide's examples and
the rest of the public API as a typed caller uses them, so that the package's annotations and the
native module's stubs stay usable. A wrong type here (or in the package) fails CI."""

from __future__ import annotations

import asyncio
from typing import Optional

import rustmap


def sync_example() -> None:
    result: rustmap.ScanResult = rustmap.scan("192.168.1.1", ports="22,80,443", service_detection=True)
    for host in result.hosts:
        print(f"{host.ip} - {host.status}")
        for port in host.ports:
            number: int = port.number
            name: Optional[str] = port.service_name
            print(f"  {number}/{port.protocol} {port.state} {name}")
            service: Optional[rustmap.Service] = port.service
            if service is not None:
                print(service.product, service.version, service.cpe)
    as_dict: dict[str, object] = result.to_dict()
    text: str = result.to_json(indent=2)
    print(as_dict, text)


async def async_example() -> None:
    result = await rustmap.async_scan("10.0.0.1", timing=4)
    for host in result.hosts:
        fingerprint: Optional[str] = host.os_fingerprint
        print(f"{host.ip}: {fingerprint}")


async def stream_example() -> None:
    config = rustmap.ScanConfig(targets=["192.168.1.0/24"], service_detection=True, timing=4)
    stream: rustmap.ScanStream = rustmap.stream_scan(config)
    async for event in stream:
        kind: str = event.kind
        if event.host_result:
            host: rustmap.Host = event.host_result
            print(f"Host: {host.ip} ({len(host.ports)} ports)", kind)
        if event.warning is not None:
            stream.cancel()
    final: rustmap.ScanResult = await stream.result()
    print(final.stats)


def targets_example() -> None:
    hosts: list[str] = rustmap.parse_targets(["192.168.1.0/24", "10.0.0.1-5"], limit=None)
    print(f"Total targets: {len(hosts)}")
    try:
        rustmap.ScanConfig(targets="10.0.0.1", os_detection=True)
    except rustmap.UnsupportedError as e:
        field: str = e.field
        print(field, e.kind, e.value, e.message)
    except rustmap.ConfigError:
        pass


if __name__ == "__main__":
    asyncio.run(async_example())
