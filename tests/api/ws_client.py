#!/usr/bin/env python3
"""A WebSocket client of `rustmap --api` for the lab test (crates/cli/tests/lab_api.rs).

Starts a scan with POST /api/scans, follows WS /api/scans/{id}/events, and for every
port_found event asks GET /api/scans/{id} whether the scan is still running. Prints one JSON
document: the events' kinds, the open ports seen and how many of them arrived while the scan ran.
Bounded: the whole run times out after --timeout seconds.
"""
import argparse
import asyncio
import json
import sys
import urllib.request

import websockets


def call(base, key, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


async def follow(args):
    base = f"http://{args.listen}"
    started = call(base, args.key, "POST", "/api/scans", json.loads(args.body))
    scan_id = started["id"]
    url = f"ws://{args.listen}/api/scans/{scan_id}/events?token={args.key}"
    kinds, open_ports, while_running = [], [], 0
    async with websockets.connect(url, max_size=2**24) as ws:
        async for text in ws:
            ev = json.loads(text)
            kinds.append(ev.get("event"))
            if ev.get("event") == "port_found" and ev["port"]["state"] == "open":
                open_ports.append([ev["addr"], ev["port"]["port"]])
                status = call(base, args.key, "GET", f"/api/scans/{scan_id}")["scan"]["status"]
                while_running += status == "running"
    final = call(base, args.key, "GET", f"/api/scans/{scan_id}")
    return {"id": scan_id, "kinds": kinds, "open": open_ports, "open_while_running": while_running,
            "status": final["scan"]["status"], "hosts": len(final["hosts"])}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--timeout", type=float, default=120)
    args = p.parse_args()
    out = asyncio.run(asyncio.wait_for(follow(args), args.timeout))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
