#!/usr/bin/env python3
"""Load on `rustmap --api`: the issue's bars, measured.

  sudo python3 bench/api_load.py target/release/rustmap [--clients 200] [--seconds 20]

The server and this client run inside a network namespace of their own with only loopback up;
scans target 127.0.0.x with reverse DNS off, so nothing leaves the namespace. Phases:

1. No token: every route but health answers 401.
2. One start per second per target: a second scan of the same target at once gets 429 with
   Retry-After.
3. Ten slow scans at once are accepted; the 11th is refused with 429.
4. CLIENTS concurrent clients for SECONDS (keep-alive HTTP/1.1, standard library only): mostly
   reads (list, one scan, health, privileges, the OpenAPI document), some scan submissions
   (refused: ten are running) and some requests without a token (401). Every status is counted;
   read latencies give p50/p99.

Prints the figures and PASS/FAIL per bar; exits 1 if a bar fails. Bounded: every request has a
timeout, the load phase stops after SECONDS, the scans are stopped and the namespace removed.
"""
import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time

KEY = "bench-key"


async def request(reader_writer, method, path, body=None, token=True, timeout=10.0):
    reader, writer = reader_writer
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(data)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    if token:
        head += f"Authorization: Bearer {KEY}\r\n"
    writer.write(head.encode() + b"\r\n" + data)
    await writer.drain()

    async def read():
        status_line = await reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            k, _, v = line.decode().partition(":")
            if k.lower() == "content-length":
                length = int(v.strip())
        payload = await reader.readexactly(length) if length else b""
        return status, payload

    return await asyncio.wait_for(read(), timeout)


async def connect(port):
    return await asyncio.open_connection("127.0.0.1", port)


def slow(target):
    return {"targets": [target], "scan_type": "T", "ports": "1-5000", "skip_discovery": True,
            "config": {"timing": {"scan_delay": "200ms"}, "names": {"reverse": "never"}}}


async def run(port, clients, seconds):
    results = {}
    conn = await connect(port)
    routes = [("POST", "/api/scans"), ("GET", "/api/scans"), ("GET", "/api/scans/01M0000000000000000000000A"),
              ("DELETE", "/api/scans/01M0000000000000000000000A"), ("POST", "/api/scans/01M0000000000000000000000A/stop"),
              ("GET", "/api/scans/01M0000000000000000000000A/export?format=xml"),
              ("GET", "/api/scans/01M0000000000000000000000A/diff/01M0000000000000000000000B"),
              ("GET", "/api/scans/01M0000000000000000000000A/events"), ("POST", "/api/vuln/check"),
              ("POST", "/api/vuln/update"), ("GET", "/api/system/privileges"), ("POST", "/scan")]
    codes = []
    for m, p in routes:
        s, _ = await request(conn, m, p, body={} if m == "POST" else None, token=False)
        codes.append(s)
    s, _ = await request(conn, "GET", "/api/system/health", token=False)
    results["no_token_401"] = all(c == 401 for c in codes) and s == 200

    s1, b1 = await request(conn, "POST", "/api/scans", slow("127.0.0.1"))
    s2, _ = await request(conn, "POST", "/api/scans", slow("127.0.0.1"))
    results["per_target_429"] = s1 == 202 and s2 == 429
    first = json.loads(b1)["id"]
    await request(conn, "POST", f"/api/scans/{first}/stop")
    await asyncio.sleep(1.5)  # the slot frees once the stopped scan is stored

    ids = []
    for i in range(2, 12):
        s, b = await request(conn, "POST", "/api/scans", slow(f"127.0.0.{i}"))
        if s == 202:
            ids.append(json.loads(b)["id"])
    s11, _ = await request(conn, "POST", "/api/scans", slow("127.0.0.12"))
    results["ten_accepted"] = len(ids) == 10
    results["eleventh_429"] = s11 == 429

    statuses, read_lat = {}, []
    stop_at = time.monotonic() + seconds

    async def client(n):
        rng = random.Random(n)
        try:
            c = await connect(port)
        except OSError:
            statuses["connect-error"] = statuses.get("connect-error", 0) + 1
            return
        while time.monotonic() < stop_at:
            r = rng.random()
            try:
                if r < 0.05:
                    s, _ = await request(c, "POST", "/api/scans", slow(f"127.0.1.{rng.randrange(1, 250)}"))
                    kind = "submit"
                elif r < 0.10:
                    s, _ = await request(c, "GET", "/api/scans", token=False)
                    kind = "no-token"
                else:
                    path = rng.choice(["/api/scans", f"/api/scans/{rng.choice(ids)}", "/api/system/health",
                                       "/api/system/privileges", "/api/scans?status=running"])
                    t0 = time.monotonic()
                    s, _ = await request(c, "GET", path)
                    read_lat.append(time.monotonic() - t0)
                    kind = "read"
            except (asyncio.TimeoutError, OSError, ValueError, asyncio.IncompleteReadError):
                s, kind = "error", "error"
                c = await connect(port)
            key = f"{kind}:{s}"
            statuses[key] = statuses.get(key, 0) + 1

    await asyncio.gather(*(client(n) for n in range(clients)))
    for i in ids:
        await request(conn, "POST", f"/api/scans/{i}/stop")
    read_lat.sort()
    pct = lambda q: read_lat[min(len(read_lat) - 1, int(q * len(read_lat)))] * 1000 if read_lat else float("nan")
    results["statuses"] = statuses
    results["reads"] = len(read_lat)
    results["reads_per_s"] = len(read_lat) / seconds
    results["p50_ms"], results["p99_ms"] = pct(0.50), pct(0.99)
    results["no_5xx"] = not any(k.split(":")[1].startswith("5") for k in statuses) and "error:error" not in statuses
    results["p99_under_200ms"] = results["p99_ms"] < 200
    results["submissions_refused_429"] = all(k == "submit:429" for k in statuses if k.startswith("submit"))
    results["no_token_401_under_load"] = all(k == "no-token:401" for k in statuses if k.startswith("no-token"))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--port", type=int, default=18200)
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.inner:
        res = asyncio.run(run(a.port, a.clients, a.seconds))
        print(json.dumps(res))
        return
    ns = f"rmapi-{os.getpid()}"
    home = tempfile.mkdtemp()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    server = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        env = dict(os.environ, HOME=home)
        server = subprocess.Popen(["ip", "netns", "exec", ns, a.binary, "--api", "--listen", f"127.0.0.1:{a.port}",
                                   "--api-key", KEY], env=env, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, __file__, a.binary, "--inner",
                              "--clients", str(a.clients), "--seconds", str(a.seconds), "--port", str(a.port)],
                             capture_output=True, text=True, timeout=a.seconds + 120)
        if out.returncode != 0:
            print(out.stderr, file=sys.stderr)
            sys.exit(1)
        res = json.loads(out.stdout)
    finally:
        if server:
            server.terminate()
            server.wait(timeout=30)
        subprocess.run(["ip", "netns", "del", ns])
        subprocess.run(["rm", "-rf", home])
    print(f"clients {a.clients}, {a.seconds:.0f} s: {res['reads']} reads ({res['reads_per_s']:.0f}/s), "
          f"p50 {res['p50_ms']:.1f} ms, p99 {res['p99_ms']:.1f} ms")
    print("statuses:", json.dumps(res["statuses"], sort_keys=True))
    ok = True
    for bar in ["no_token_401", "per_target_429", "ten_accepted", "eleventh_429", "no_5xx", "p99_under_200ms",
                "submissions_refused_429", "no_token_401_under_load"]:
        print(f"{'PASS' if res[bar] else 'FAIL'} {bar}")
        ok &= bool(res[bar])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
