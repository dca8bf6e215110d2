# RustMap's Python script runner. Written for RustMap; not derived from any other project.
#
# Started by rustmap-script as `python3 -I -S -B -c <this file>` with rlimits already set on
# the process by the parent (CPU, address space, open files, file size, processes). It reads one
# job (a JSON line) on stdin, runs the script's rule and, if the rule says so, its action, and
# answers on stdout with JSON lines. Sockets exist only as requests to the parent ("connect",
# "send", "recv", "close"), which checks every address against the scan's targets.
#
# Before any script code runs, an audit hook (PEP 578) refuses sockets, processes, writes to
# files, ctypes and similar: a refusal is reported to the parent and the process exits at once,
# so a script cannot catch it and carry on. The hook is a strong guard, not a security
# boundary (CPython bugs can bypass it); the rlimits and the process boundary are the hard part.
import builtins
import json
import os
import sys

# The protocol's pipes, kept private: fds 0 and 1 are pointed at /dev/null so that a script's
# stray writes (or reads) cannot corrupt the conversation.
_rpc_in = os.fdopen(os.dup(0), "rb", buffering=0)
_rpc_out = os.fdopen(os.dup(1), "wb", buffering=0)
_null = os.open(os.devnull, os.O_RDWR)
os.dup2(_null, 0)
os.dup2(_null, 1)


def _send(msg):
    _rpc_out.write(json.dumps(msg, separators=(",", ":")).encode("utf-8") + b"\n")


def _readline():
    line = b""
    while not line.endswith(b"\n"):
        chunk = _rpc_in.readline()
        if not chunk:
            os._exit(0)  # the parent went away
        line += chunk
    return json.loads(line)


def _call(msg):
    _send(msg)
    return _readline()


class _Log:
    """sys.stdout / sys.stderr of a script: lines go to the run's trace."""

    def __init__(self):
        self.buf = ""

    def write(self, s):
        self.buf += str(s)
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            _send({"op": "log", "line": line[:512]})
        if len(self.buf) > 512:
            _send({"op": "log", "line": self.buf[:512]})
            self.buf = ""
        return len(s)

    def flush(self):
        pass


# ---------------------------------------------------------------------------------------------
# The `rustmap` module scripts import.


class SocketError(Exception):
    """A network failure: "TIMEOUT", "EOF", "ERROR: connection refused", ..."""


def _latin1(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return bytes(data).decode("latin-1")


class Socket:
    """A TCP (or TLS) connection made by RustMap on the script's behalf."""

    def __init__(self, timeout=10.0):
        self._id = None
        self._timeout = float(timeout)

    def set_timeout(self, seconds):
        self._timeout = float(seconds)

    def connect(self, host, port, ssl=False):
        if isinstance(host, dict):
            host = host.get("ip", "")
        if isinstance(port, dict):
            port = port.get("number", 0)
        r = _call({"op": "connect", "host": str(host), "port": int(port), "ssl": bool(ssl), "timeout": self._timeout})
        if not r.get("ok"):
            raise SocketError(r.get("error", "ERROR"))
        self._id = r["sock"]
        return self

    def send(self, data):
        r = _call({"op": "send", "sock": self._id, "data": _latin1(data), "timeout": self._timeout})
        if not r.get("ok"):
            raise SocketError(r.get("error", "ERROR"))

    def recv(self, max_bytes=65536):
        """Bytes as they arrive (at least one); b"" when the peer has closed."""
        r = _call({"op": "recv", "sock": self._id, "max": int(max_bytes), "timeout": self._timeout})
        if r.get("ok"):
            return r["data"].encode("latin-1")
        if r.get("error") == "EOF":
            return b""
        raise SocketError(r.get("error", "ERROR"))

    def close(self):
        if self._id is not None:
            _call({"op": "close", "sock": self._id})
            self._id = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Response:
    """An HTTP response: status (int), headers (dict, lower-case names), body (bytes)."""

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


_MAX_BODY = 2 * 1024 * 1024


def http_get(host, port, path="/", timeout=10.0, ssl=None):
    """GET `path` over HTTP/1.1 (TLS when `ssl`, or when the port's service says https)."""
    if isinstance(port, dict) and ssl is None:
        svc = port.get("service") or ""
        ssl = svc == "https" or port.get("version", {}).get("service_tunnel") == "ssl"
    name = host.get("targetname") or host.get("ip") if isinstance(host, dict) else str(host)
    with Socket(timeout) as s:
        s.connect(host, port, ssl=bool(ssl))
        s.send(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nUser-Agent: RustMap\r\nConnection: close\r\n\r\n")
        data = b""
        while len(data) < _MAX_BODY:
            chunk = s.recv()
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise SocketError("ERROR: not an HTTP response")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _unchunk(body)
    elif headers.get("content-length", "").isdigit():
        body = body[: int(headers["content-length"])]
    return Response(int(parts[1]), headers, body[:_MAX_BODY])


def _unchunk(body):
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return out


# Keep in step with HTTP_SERVICES / HTTP_PORTS in mod.rs (RustMap decides `portrule =
# rustmap.is_http` itself; a unit test compares the two).
_HTTP_SERVICES = {"http", "https", "http-alt", "http-proxy", "https-alt"}
_HTTP_PORTS = {80, 443, 631, 7080, 8008, 8080, 8088, 8443, 8880, 8888}


def is_http(host, port):
    """A port rule for web servers (by service name or well-known number)."""
    return port.get("service") in _HTTP_SERVICES or port.get("number") in _HTTP_PORTS


_JOB = {}


def args(key, default=None):
    """A --script-args value (`key`, then `<script>.key`)."""
    a = _JOB.get("args", {})
    for k in (key, f"{_JOB.get('script', '')}.{key}"):
        if k in a:
            return a[k]
    return default


def log(message):
    """A line for the run's trace (shown under -d / --script-trace)."""
    _send({"op": "log", "line": str(message)[:512]})


# ---------------------------------------------------------------------------------------------
# The guard.

_REFUSED = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.kill",
    "os.killpg",
    "os.remove",
    "os.unlink",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.chmod",
    "os.chown",
    "os.link",
    "os.symlink",
    "os.truncate",
    "os.utime",
    "os.putenv",
    "os.unsetenv",
    "os.setuid",
    "os.chdir",
    "shutil.",
    "ctypes.",
    "resource.setrlimit",
    "resource.prlimit",
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
    "sys._current_frames",
    "code.__new__",
    "function.__new__",
    "pty.",
    "webbrowser.",
    "mmap.",
    "syslog.",
)
# _posixsubprocess.fork_exec starts processes without an audit event of its own, so the
# module is refused at import (which makes `import subprocess` fail too).
_REFUSED_IMPORTS = frozenset({"ctypes", "_ctypes", "_posixsubprocess"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# Files may be read only where the interpreter's own library lives (imports of the standard
# library); nothing else of the machine (keys, configs) is readable, so nothing can be sent.
_READABLE = tuple(
    {os.path.join(os.path.realpath(p), "") for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
)


class Refused(BaseException):
    """Raised by the guard if the process could not be ended (it always should be)."""


# Everything the hook uses, builtins included, is bound as a default argument, so that a script
# that replaces a module attribute (`os._exit = ...`, `__main__._REFUSED = ()`,
# `builtins.isinstance = ...`) does not change the hook. The values bound are immutable.
def _hook(
    event,
    a,
    _refused=_REFUSED,
    _imports=_REFUSED_IMPORTS,
    _flags=_WRITE_FLAGS,
    _readable=_READABLE,
    _exit=os._exit,
    _write=_rpc_out.write,
    _Refused=Refused,
    _q=json.dumps,
    _guarded=frozenset({"__code__", "__defaults__", "__kwdefaults__", "__globals__", "__closure__"}),
    _str=str,
    _len=len,
    _repr=repr,
    _int=int,
    _isinstance=isinstance,
    _type=type,
    _decode=bytes.decode,
    _split=str.split,
    _join=str.join,
    _startswith=str.startswith,
    _lstat=os.lstat,
    _readlink=os.readlink,
    _OSError=OSError,
):
    what = None
    if event.startswith(_refused):
        what = event
    elif event == "import" and a and a[0] in _imports:
        what = "import " + _str(a[0])
    elif event == "object.__setattr__" or event == "object.__delattr__":
        # Rebinding a function's code, defaults or globals could disarm this hook.
        if _len(a) > 1 and a[1] in _guarded:
            what = event + " " + a[1]
    elif event == "open" or event == "os.listdir" or event == "os.scandir":
        path = a[0] if a else None
        mode = _str(a[1]) if event == "open" and _len(a) > 1 and a[1] is not None else ""
        flags = a[2] if event == "open" and _len(a) > 2 else None
        if path is None:
            path = "."
        if _type(path) is bytes:
            path = _decode(path, "utf-8", "surrogateescape")
        if _type(path) is not str:
            # Descriptors, and path objects (whose __fspath__ could answer differently when
            # the file is really opened).
            what = event + " of a " + _type(path).__name__
        elif "w" in mode or "a" in mode or "x" in mode or "+" in mode:
            what = "open for writing: " + _repr(path)
        elif _isinstance(flags, _int) and flags & _flags:
            what = "open for writing: " + _repr(path)
        else:
            # Resolved here (symbolic links included, as the kernel will follow them) with str
            # methods and the C functions bound above only: posixpath's helpers read module
            # globals (os.getcwd, os.lstat) that a script could replace. The directory is always
            # "/" (os.chdir is refused), so a relative path starts there.
            pending = _split(path, "/")
            parts = []
            hops = 0
            i = 0
            while i < _len(pending):
                part = pending[i]
                i += 1
                if part == "" or part == ".":
                    continue
                if part == "..":
                    if parts:
                        parts.pop()
                    continue
                parts.append(part)
                try:
                    st = _lstat("/" + _join("/", parts))
                except _OSError:
                    continue  # does not exist (yet): the open fails at the same place
                if (st.st_mode & 0o170000) == 0o120000:
                    hops += 1
                    if hops > 40:
                        what = event + ": too many symbolic links"
                        break
                    target = _readlink("/" + _join("/", parts))
                    parts.pop()
                    if _startswith(target, "/"):
                        parts = []
                    pending = _split(target, "/") + pending[i:]
                    i = 0
            p = "/" + _join("/", parts)
            if what is None and not _startswith(p + "/", _readable):
                what = event + " " + p
    if what is not None:
        # Sticky: the parent records the refusal (exit status 3 means one even if this line
        # is lost) and the process ends before the script can catch anything.
        try:
            _write(('{"op":"forbidden","what":' + _q(what) + "}\n").encode("utf-8"))
        finally:
            _exit(3)
        raise _Refused(what)


# ---------------------------------------------------------------------------------------------
# Running a job.


def _entries(value, depth=0):
    """A dict (in its order) or list as [[key or None, value], ...], values str or nested."""
    if depth > 16:
        return "..."
    if isinstance(value, dict):
        return {"table": [[str(k), _entries(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"table": [[None, _entries(v, depth + 1)] for v in value]}
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _main():
    job = _readline()
    _JOB.update(job)
    module = type(sys)("rustmap")
    for name in ("Socket", "SocketError", "Response", "http_get", "is_http", "args", "log"):
        setattr(module, name, globals()[name])
    module.socket = Socket
    sys.modules["rustmap"] = module
    sys.stdout = sys.stderr = _Log()
    sys.setrecursionlimit(400)
    try:
        code = compile(job["source"], job["script"] + ".py", "exec")
    except (SyntaxError, ValueError) as e:
        _send({"op": "error", "kind": "load", "message": f"{type(e).__name__}: {e}"})
        return
    sys.addaudithook(_hook)
    scope = {"__name__": "rustmap_script", "__builtins__": builtins}
    try:
        exec(code, scope)
        rule = scope.get(job["phase"])
        action = scope.get("action")
        if not callable(rule) or not callable(action):
            _send({"op": "error", "kind": "load", "message": f"no {job['phase']} or action function"})
            return
        args_ = [a for a in (job.get("host"), job.get("port")) if a is not None]
        if job["phase"] in ("prerule", "postrule"):
            args_ = []
        if not rule(*args_):
            _send({"op": "done", "ran": False})
            return
        out = action(*args_)
    except MemoryError:
        _send({"op": "error", "kind": "memory-limit", "message": "MemoryError"})
        return
    except RecursionError:
        _send({"op": "error", "kind": "stack-overflow", "message": "RecursionError"})
        return
    except BaseException as e:  # a script's own error, whatever it is, ends its run
        _send({"op": "error", "kind": "runtime", "message": f"{type(e).__name__}: {e}"[:2048]})
        return
    if out is None:
        result = None
    elif isinstance(out, str):
        # Checked here so that an oversized answer is never encoded and sent.
        if len(out) > job.get("max_output", 65536):
            _send({"op": "error", "kind": "output-too-large", "message": ""})
            return
        result = {"text": out}
    else:
        result = _entries(out)
    _send({"op": "done", "ran": True, "result": result})


try:
    _main()
except MemoryError:
    os._exit(4)
os._exit(0)
