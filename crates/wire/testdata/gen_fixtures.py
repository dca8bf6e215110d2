#!/usr/bin/env python3
"""Regenerates the independent byte fixtures used by rustmap-wire's unit tests.

The fixtures are produced by scapy (an independent implementation), so the
Rust tests compare our parsers and emitters against bytes we did not produce.
Run: pip install scapy && python3 gen_fixtures.py
"""
from scapy.all import (IP, IPv6, TCP, UDP, ICMP, IPerror, UDPerror, TCPerror, Ether, Dot1Q, ARP,
                       DNS, DNSQR, SCTP, SCTPChunkInit, ICMPv6DestUnreach, IPerror6,
                       ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6NDOptSrcLLAddr, ICMPv6NDOptDstLLAddr,
                       ICMPv6EchoRequest, raw)


def show(name, pkt):
    b = raw(pkt)
    print(f"// {name}: {pkt.summary()}")
    print(f"pub const {name}: [u8; {len(b)}] = [")
    for i in range(0, len(b), 16):
        print("    " + ", ".join(f"0x{x:02x}" for x in b[i:i + 16]) + ",")
    print("];")


show("TCP_SYN_V4", IP(src="192.0.2.1", dst="198.51.100.2", ttl=64, id=0x1234) /
     TCP(sport=40000, dport=80, seq=0x01020304, flags="S", window=64240,
         options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1, 0)), ("NOP", None), ("WScale", 7)]))
show("TCP_V6", IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=60) /
     TCP(sport=443, dport=51000, seq=1000, ack=2001, flags="SA", window=65535))
show("UDP_DNS_V4", IP(src="192.0.2.1", dst="192.0.2.53", ttl=64, id=1) /
     UDP(sport=53000, dport=53) / DNS(id=0xabcd, rd=1, qd=DNSQR(qname="example.com")))
show("ICMP_PORT_UNREACH", IP(src="198.51.100.2", dst="192.0.2.1", ttl=63, id=7) /
     ICMP(type=3, code=3) / IPerror(src="192.0.2.1", dst="198.51.100.2", ttl=64, id=99, proto=17) /
     UDPerror(sport=40001, dport=161, len=8, chksum=0x1111))
show("ICMP6_UNREACH_TCP", IPv6(src="2001:db8::fe", dst="2001:db8::1", hlim=64) /
     ICMPv6DestUnreach(code=1) / IPerror6(src="2001:db8::1", dst="2001:db8::2", hlim=64) /
     TCPerror(sport=40002, dport=22, seq=0xdeadbeef, flags="S", window=1024))
show("SCTP_INIT", IP(src="192.0.2.1", dst="198.51.100.2", ttl=64, id=5) /
     SCTP(sport=5000, dport=80, tag=0) /
     SCTPChunkInit(init_tag=0x11223344, a_rwnd=32768, n_out_streams=10, n_in_streams=2048, init_tsn=0x11223344))
show("ARP_REPLY", Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01") /
     ARP(op=2, hwsrc="02:00:00:00:00:02", psrc="192.0.2.2", hwdst="02:00:00:00:00:01", pdst="192.0.2.1"))
show("VLAN_FRAME", Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=42, prio=3) /
     IP(src="192.0.2.1", dst="192.0.2.2", ttl=64, id=2) / ICMP(type=8, id=0x4242, seq=1) / b"ping")
show("ICMP6_NS", IPv6(src="2001:db8::1", dst="ff02::1:ff00:2", hlim=255) /
     ICMPv6ND_NS(tgt="2001:db8::2") / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:01"))
show("ICMP6_NA", IPv6(src="2001:db8::2", dst="2001:db8::1", hlim=255) /
     ICMPv6ND_NA(tgt="2001:db8::2", R=0, S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr="02:00:00:00:00:02"))
show("ICMP6_ECHO", IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=64) / ICMPv6EchoRequest(id=7, seq=9, data=b"abc"))
show("ICMP_TIMESTAMP", IP(src="192.0.2.1", dst="192.0.2.2", ttl=64, id=3) / ICMP(type=13, id=1, seq=2, ts_ori=0, ts_rx=0, ts_tx=0))
show("ICMP_MASK", IP(src="192.0.2.1", dst="192.0.2.2", ttl=64, id=4) / ICMP(type=17, id=1, seq=2) / b"\x00\x00\x00\x00")
