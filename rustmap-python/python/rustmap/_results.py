"""Result and event objects: read-only views over the library's serde shapes.

Each object keeps the dictionary it was built from (the shape ``rustmap -oJ`` writes), so
``to_dict()`` returns exactly what the library produced and ``to_json()`` is that as JSON; the
attributes are the names the user guide uses (``host.ip``, ``port.number``, ``port.service_name``).
"""

from __future__ import annotations

import json
from typing import Any, Optional

__all__ = ["Service", "Script", "Port", "Host", "ScanResult", "Event"]

JsonDict = dict[str, Any]


class _View:
    """A read-only object over a JSON dictionary."""

    __slots__ = ("_data",)

    def __init__(self, data: JsonDict) -> None:
        self._data = data

    def to_dict(self) -> JsonDict:
        """The object as the library's JSON shape (a deep copy: changing it changes nothing here)."""
        copied: JsonDict = json.loads(json.dumps(self._data))
        return copied

    def to_json(self, indent: Optional[int] = None) -> str:
        """The object as JSON text, in the library's shape (``rustmap -oJ``)."""
        return json.dumps(self._data, indent=indent)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _View) and type(self) is type(other) and self._data == other._data

    def __hash__(self) -> int:
        return hash(self.to_json())


class Script(_View):
    """Output of one script: ``id``, ``output`` and structured ``elements``."""

    __slots__ = ()

    @property
    def id(self) -> str:
        """The script's name (``ssl-cert``, ``http-title``)."""
        return str(self._data.get("id", ""))

    @property
    def output(self) -> str:
        """Its text output."""
        return str(self._data.get("output", ""))

    @property
    def elements(self) -> list[tuple[str, str]]:
        """Its structured output as key/value pairs."""
        return [(str(k), str(v)) for k, v in self._data.get("elements", [])]

    def __repr__(self) -> str:
        return f"Script(id={self.id!r})"


class Service(_View):
    """What runs behind a port: a name from the port table, or product and version from ``-sV``."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """Service name (``ssh``, ``http``)."""
        return str(self._data.get("name", ""))

    @property
    def method(self) -> str:
        """``"table"`` (named from the port number) or ``"probed"`` (service detection)."""
        return str(self._data.get("method", "table"))

    @property
    def conf(self) -> int:
        """Confidence 0-10, as nmap's ``conf``."""
        return int(self._data.get("conf", 0))

    def _opt(self, key: str) -> Optional[str]:
        v = self._data.get(key)
        return None if v is None else str(v)

    @property
    def product(self) -> Optional[str]:
        """Product (``OpenSSH``, ``nginx``), with service detection."""
        return self._opt("product")

    @property
    def version(self) -> Optional[str]:
        """Version (``9.2p1 Debian 2+deb12u3``), with service detection."""
        return self._opt("version")

    @property
    def extrainfo(self) -> Optional[str]:
        """Extra information (``protocol 2.0``)."""
        return self._opt("extrainfo")

    @property
    def tunnel(self) -> Optional[str]:
        """Tunnel the service was found through (``ssl``)."""
        return self._opt("tunnel")

    @property
    def cpe(self) -> list[str]:
        """CPE names."""
        return [str(c) for c in self._data.get("cpe", [])]

    @property
    def version_line(self) -> str:
        """nmap's VERSION column: product, version and ``(extrainfo)``."""
        parts = [p for p in (self.product, self.version) if p]
        if self.extrainfo:
            parts.append(f"({self.extrainfo})")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"Service(name={self.name!r}, product={self.product!r}, version={self.version!r})"


class Port(_View):
    """One scanned port: ``number``, ``protocol``, ``state``, ``reason``, ``service``, ``scripts``."""

    __slots__ = ()

    @property
    def number(self) -> int:
        """The port number."""
        return int(self._data["port"])

    @property
    def protocol(self) -> str:
        """``"tcp"``, ``"udp"`` or ``"sctp"``."""
        return str(self._data["protocol"])

    @property
    def state(self) -> str:
        """nmap's state: ``open``, ``closed``, ``filtered``, ``unfiltered``, ``open|filtered``, ..."""
        return str(self._data["state"])

    @property
    def reason(self) -> str:
        """Why it has that state (``syn-ack``, ``conn-refused``, ``no-response``)."""
        return str(self._data.get("reason", ""))

    @property
    def reason_ttl(self) -> int:
        """TTL of the packet that gave the reason (0 when not known)."""
        return int(self._data.get("reason_ttl", 0))

    @property
    def service(self) -> Optional[Service]:
        """What runs there, if known."""
        s = self._data.get("service")
        return None if s is None else Service(s)

    @property
    def service_name(self) -> Optional[str]:
        """The service's name (``ssh``), or ``None`` when not known."""
        s = self._data.get("service")
        return None if s is None else str(s.get("name", ""))

    @property
    def tls(self) -> Optional[JsonDict]:
        """What service detection learnt of the port's TLS (version, cipher, JA3S, certificates)."""
        t = self._data.get("tls")
        return None if t is None else dict(t)

    @property
    def scripts(self) -> list[Script]:
        """Output of scripts that ran on this port."""
        return [Script(s) for s in self._data.get("scripts", [])]

    @property
    def vulnerabilities(self) -> list[JsonDict]:
        """Known CVEs of the service's version (``vuln_check=True``), highest CVSS first: dicts with
        ``id``, ``cvss``, ``severity``, ``summary``, ``range``, ``matched``, ``backport``, ``kev``..."""
        return [dict(v) for v in self._data.get("vulnerabilities", [])]

    def __repr__(self) -> str:
        return f"Port({self.number}/{self.protocol} {self.state} {self.service_name})"


class Host(_View):
    """Everything found about one host: ``ip``, ``status``, ``ports``, ``os_fingerprint``, ..."""

    __slots__ = ()

    @property
    def ip(self) -> str:
        """The host's address, as text (``198.18.0.10``, ``fd00::a``)."""
        return str(self._data["addr"])

    @property
    def status(self) -> str:
        """``"up"``, ``"down"`` or ``"unknown"`` (listed without probing)."""
        return str(self._data["status"])

    @property
    def reason(self) -> str:
        """Why it has that status (``echo-reply``, ``arp-response``, ``user-set``)."""
        return str(self._data.get("reason", ""))

    @property
    def hostnames(self) -> list[str]:
        """Its names: the one the user gave, then reverse-DNS names."""
        return [str(h["name"]) for h in self._data.get("hostnames", [])]

    @property
    def mac(self) -> Optional[str]:
        """Hardware address, when the host is on a directly connected link."""
        m = self._data.get("mac")
        return None if m is None else str(m)

    @property
    def ports(self) -> list[Port]:
        """Ports shown individually (those not folded into ``extraports``), by protocol and number."""
        return [Port(p) for p in self._data.get("ports", [])]

    @property
    def extraports(self) -> list[JsonDict]:
        """Ports folded into counts by state, as nmap's ``<extraports>``."""
        return [dict(e) for e in self._data.get("extraports", [])]

    def port(self, number: int, protocol: str = "tcp") -> Optional[Port]:
        """The port ``number/protocol`` if it is among ``ports``."""
        for p in self.ports:
            if p.number == number and p.protocol == protocol:
                return p
        return None

    @property
    def open_ports(self) -> list[Port]:
        """The ports whose state is ``open``."""
        return [p for p in self.ports if p.state == "open"]

    @property
    def services(self) -> list[Service]:
        """The services found on its ports."""
        return [s for s in (p.service for p in self.ports) if s is not None]

    @property
    def os_matches(self) -> list[JsonDict]:
        """OS guesses, best first (``name``, ``accuracy``, ``classes``): filled by ``os_detection=True``."""
        return [dict(o) for o in self._data.get("os", [])]

    @property
    def os_fingerprint(self) -> Optional[str]:
        """The best OS guess's name (``os_detection=True``, which needs root or CAP_NET_RAW), or
        ``None`` without OS detection or when no entry of the database matched well enough."""
        guesses = self._data.get("os", [])
        return str(guesses[0]["name"]) if guesses else None

    @property
    def scripts(self) -> list[Script]:
        """Output of scripts that ran on the host."""
        return [Script(s) for s in self._data.get("scripts", [])]

    @property
    def geoip(self) -> Optional[JsonDict]:
        """Where the host is (``geoip=True``): ``country_code``, ``country``, ``city``, ``latitude``,
        ``longitude``, ``timezone``, ``asn``, ``as_org``, and ``special`` for private addresses."""
        g = self._data.get("geoip")
        return None if g is None else dict(g)

    @property
    def rtt_us(self) -> Optional[int]:
        """Smoothed round-trip time in microseconds, if measured."""
        v = self._data.get("srtt_us")
        return None if v is None else int(v)

    @property
    def timed_out(self) -> bool:
        """``True`` when the host timeout expired and the results are partial."""
        return bool(self._data.get("timed_out", False))

    def __repr__(self) -> str:
        return f"Host(ip={self.ip!r}, status={self.status!r}, ports={len(self._data.get('ports', []))})"


class ScanResult(_View):
    """A whole scan: ``hosts`` (those up), ``hosts_down``, ``warnings``, ``stats``, ``scan_id``."""

    __slots__ = ()

    @property
    def scan_id(self) -> str:
        """The scan's id (a ULID)."""
        return str(self._data.get("scan_id", ""))

    @property
    def hosts(self) -> list[Host]:
        """Hosts that were up (or of unknown status, with ``mode="list"``), in the order they finished."""
        return [Host(h) for h in self._data.get("hosts", [])]

    @property
    def hosts_down(self) -> int:
        """How many hosts were down (kept as a count only)."""
        return int(self._data.get("hosts_down", 0))

    @property
    def warnings(self) -> list[str]:
        """Warnings the scan gave (names that did not resolve, ...)."""
        return [str(w) for w in self._data.get("warnings", [])]

    @property
    def scripts(self) -> list[Script]:
        """Output of scripts that ran before or after the hosts."""
        return [Script(s) for s in self._data.get("scripts", [])]

    @property
    def stats(self) -> Optional[JsonDict]:
        """Totals: ``elapsed_secs``, ``hosts_up``, ``hosts_down``, ``hosts_total``, ``completed``, ``outcome``."""
        s = self._data.get("stats")
        return None if s is None else dict(s)

    @property
    def info(self) -> Optional[JsonDict]:
        """The scan's header (the ``scan_started`` event): version, scan types and ports, configuration."""
        i = self._data.get("info")
        return None if i is None else dict(i)

    @property
    def completed(self) -> bool:
        """Whether every target was scanned (``False`` when cancelled or failed)."""
        s = self._data.get("stats") or {}
        return bool(s.get("completed", False))

    @property
    def outcome(self) -> str:
        """``"completed"``, ``"cancelled"`` or ``"failed"`` (``""`` before the end)."""
        s = self._data.get("stats") or {}
        return str((s.get("outcome") or {}).get("status", "completed")) if s else ""

    def host(self, ip: str) -> Optional[Host]:
        """The host of address ``ip``, if it was up."""
        for h in self.hosts:
            if h.ip == ip:
                return h
        return None

    def __repr__(self) -> str:
        return f"ScanResult(scan_id={self.scan_id!r}, hosts={len(self._data.get('hosts', []))}, hosts_down={self.hosts_down})"


class Event(_View):
    """One event of a running scan. ``kind`` says which (``scan_started``, ``host_up``,
    ``port_found``, ``service_found``, ``host_done``, ``progress``, ``warning``, ``trace_hop``,
    ``script_output``, ``os_match``, ``first_open_port``, ``stopping``, ``scan_finished``); the
    properties give each kind's content, ``None`` on events of other kinds."""

    __slots__ = ()

    @property
    def kind(self) -> str:
        """The event's kind, as the JSON ``event`` tag spells it."""
        return str(self._data.get("event", ""))

    @property
    def host_result(self) -> Optional[Host]:
        """On ``host_done`` of a host that is up (or listed): the host's full result. Hosts found
        down end with a ``host_done`` too, but have no ``host_result`` (see ``host_done``), just as
        ``ScanResult.hosts`` holds only hosts that are up."""
        if self.kind != "host_done" or self._data.get("status") == "down":
            return None
        return Host(self._host_data())

    @property
    def host_done(self) -> Optional[Host]:
        """On ``host_done``: the host's result, whatever its status."""
        return Host(self._host_data()) if self.kind == "host_done" else None

    def _host_data(self) -> JsonDict:
        return {k: v for k, v in self._data.items() if k != "event"}

    @property
    def addr(self) -> Optional[str]:
        """The host the event is about, when it is about one."""
        if "addr" in self._data:
            return str(self._data["addr"])
        scope = self._data.get("scope")
        if isinstance(scope, dict) and "addr" in scope:
            return str(scope["addr"])
        return None

    @property
    def port(self) -> Optional[Port]:
        """On ``port_found``: the port and its state."""
        p = self._data.get("port")
        return Port(p) if self.kind == "port_found" and isinstance(p, dict) else None

    @property
    def service(self) -> Optional[Service]:
        """On ``service_found``: the service (its port is ``service_port``)."""
        return Service(self._data["service"]) if self.kind == "service_found" else None

    @property
    def service_port(self) -> Optional[tuple[int, str]]:
        """On ``service_found``: ``(number, protocol)`` of the port."""
        if self.kind != "service_found":
            return None
        return int(self._data["port"]), str(self._data["protocol"])

    @property
    def warning(self) -> Optional[str]:
        """On ``warning``: the message."""
        return str(self._data["message"]) if self.kind == "warning" else None

    @property
    def progress(self) -> Optional[JsonDict]:
        """On ``progress``: ``hosts_done``, ``probes_sent``, ``replies``, ``fraction``, ``hosts_active``."""
        return self._host_data() if self.kind == "progress" else None

    @property
    def stats(self) -> Optional[JsonDict]:
        """On ``scan_finished``: the scan's totals and ``outcome``."""
        return self._host_data() if self.kind == "scan_finished" else None

    @property
    def scan_id(self) -> Optional[str]:
        """On ``scan_started``: the scan's id."""
        return str(self._data.get("scan_id", "")) if self.kind == "scan_started" else None

    def __repr__(self) -> str:
        return f"Event(kind={self.kind!r})"
