"""RustMap's exceptions: a small hierarchy over the library's typed errors.

::

    RustmapError
    ├── ConfigError (also a ValueError)     the configuration is wrong; .field names the option
    │   ├── TargetError                     a target or exclusion that does not parse or expand
    │   ├── UnsupportedError                an option RustMap does not do yet
    │   ├── PrivilegeError                  the option needs raw-socket privilege (root/CAP_NET_RAW)
    │   └── UnknownOptionError (also a TypeError)   a keyword argument that names no option
    └── ScanError (also a RuntimeError)     the scan could not start (sockets, proxy) or failed

Every instance carries ``message``, ``field`` (the configuration field at fault, as the
library's ``ConfigError`` names it: ``"timing"``, ``"ports.spec"``, ``"targets"``), ``value``
(what was given, or ``""``) and ``kind`` (``"invalid"``, ``"conflict"``, ``"missing"``,
``"privilege"``, ``"unsupported"``, ``"unknown"``, ``"start"``, ``"failed"``).
"""

from __future__ import annotations

__all__ = [
    "RustmapError",
    "ConfigError",
    "TargetError",
    "UnsupportedError",
    "PrivilegeError",
    "UnknownOptionError",
    "ScanError",
]


class RustmapError(Exception):
    """Base of every exception RustMap raises."""

    message: str
    field: str
    value: str
    kind: str

    def __init__(self, message: str, field: str = "", value: str = "", kind: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.value = value
        self.kind = kind

    def __reduce__(self) -> tuple[type[RustmapError], tuple[str, str, str, str]]:
        # Pickle with every attribute (exceptions cross process pools).
        return (type(self), (self.message, self.field, self.value, self.kind))


class ConfigError(RustmapError, ValueError):
    """The scan's configuration is invalid: ``field`` names the option at fault."""


class TargetError(ConfigError):
    """A target (or exclusion) expression that does not parse, or expands past a limit."""


class UnsupportedError(ConfigError):
    """An option RustMap recognizes but does not implement yet."""


class PrivilegeError(ConfigError):
    """The option needs raw-socket privilege (root or CAP_NET_RAW): a SYN scan, raw discovery."""


class UnknownOptionError(ConfigError, TypeError):
    """A keyword argument that names no option; ``field`` lists the unknown names, comma-separated."""


class ScanError(RustmapError, RuntimeError):
    """The scan could not start (raw sockets, proxy, output files) or failed while running."""
