#!/usr/bin/env python3
"""A QUIC server for RustMap's lab: aioquic (a QUIC implementation independent of the quinn
stack RustMap uses) listening on UDP, completing handshakes for the ALPN values it is given.

It answers unknown versions with Version Negotiation (aioquic lists the versions it supports)
and closes every connection once its handshake is done: the lab only needs what a scanner sees.

Usage: quic_server.py --cert C --key K --alpn h3 [--alpn ...] ADDR:PORT [ADDR:PORT ...]
"""
import argparse
import asyncio

from aioquic.asyncio import serve
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import HandshakeCompleted


class CloseAfterHandshake(QuicConnectionProtocol):
    def quic_event_received(self, event):
        if isinstance(event, HandshakeCompleted):
            # Let the client read the handshake, then close politely.
            asyncio.get_running_loop().call_later(0.2, self.close)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--alpn", action="append", required=True)
    ap.add_argument("listen", nargs="+")
    a = ap.parse_args()
    for spec in a.listen:
        host, _, port = spec.rpartition(":")
        cfg = QuicConfiguration(is_client=False, alpn_protocols=a.alpn, idle_timeout=10.0)
        cfg.load_cert_chain(a.cert, a.key)
        await serve(host.strip("[]"), int(port), configuration=cfg, create_protocol=CloseAfterHandshake)
    await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
