#!/usr/bin/env bash
# Scan the running lab with nmap from the scanner namespace and check every result against
# ground-truth.json (check_scan.py). This is the reference run that RustMap's own lab tests
# are compared with (SCTP scans included: sctp_responder.py on h10). Needs `lab.sh up` first.
# Takes about 2 minutes, most of it the full
# SYN scan of the firewalled host h11 (set SMOKE_QUICK=1 to scan only h11's interesting ports).
#
# XML results land in $LAB_DIR/smoke/ (removed by `lab.sh down`).
set -euo pipefail

P=${LAB_PREFIX:-rmlab}
D=${LAB_DIR:-/tmp/$P}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${LAB_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=$(command -v python3)
OUT=$D/smoke
[ -f "$D/.rustmap-lab" ] || { echo "nmap-smoke.sh: lab $P is not up (run tests/lab/lab.sh up)" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$OUT"/*.xml

scan() {  # scan NAME NMAP-ARGS...
  local name=$1 t0; shift
  t0=$(date +%s)
  timeout 600 ip netns exec "$P-scan" nmap "$@" -oX "$OUT/$name.xml" >"$OUT/$name.txt" 2>&1 ||
    { echo "nmap $* failed:" >&2; cat "$OUT/$name.txt" >&2; exit 1; }
  printf '  %-12s %4ss  nmap %s\n' "$name" "$(($(date +%s) - t0))" "$*"
}

h11_ports=-p-
[ "${SMOKE_QUICK:-0}" = 1 ] && h11_ports=-p1-1024,8080-8090
echo "nmap-smoke: scanning from $P-scan"
scan h10-sT -sT -p- -T4 198.18.0.10
scan h10-sT6 -6 -sT -p- -T4 fd00:18::10
scan h11-sS --max-retries 1 -sS "$h11_ports" -T4 198.18.0.11
scan h12-sT -sT -p 1-3000 -T4 198.18.0.12
scan h13-sS -sS -p- -T4 198.18.0.13
scan sweep -sn 198.18.0.0/24
scan h10-sU -sU -p 53,161,11211 198.18.0.10
scan h13-sU -sU -p 1-200 198.18.0.13
scan h20-sT -sT -p 22,80 198.18.2.10
scan h20-trace -sS --traceroute -p 80 198.18.2.10
scan h20-trace6 -6 -sS --traceroute -p 80 fd00:18:2::10
scan h10-sY -sY -p 1-200,2905,3868 -T4 198.18.0.10
scan h10-sY6 -6 -sY -p 1-200,2905,3868 -T4 fd00:18::10
scan h10-sZ -sZ -p 9,80,2905,3868 198.18.0.10
scan h10-sZ6 -6 -sZ -p 9,80,2905,3868 fd00:18::10
scan h11-sY -sY -p 9,80,2905,3868 198.18.0.11
scan h11-sZ6 -6 -sZ -p 9,80,2905,3868 fd00:18::11
scan h13-sY -sY -p 1-200,2905,3868 -T4 198.18.0.13
scan h13-sZ6 -6 -sZ -p 9,80,2905,3868 fd00:18::13
scan h10-sV -sV --version-light -p 21,22,53,80,443,5432,6379,8080,8443,11211 198.18.0.10

# No way out of the lab: a route lookup (no packet is sent) for a non-lab address must fail.
if ip -n "$P-scan" route get 192.0.2.1 >/dev/null 2>&1; then
  echo "nmap-smoke: $P-scan has a route to a non-lab address!" >&2
  exit 1
fi
echo "  no route out of $P-scan: ok"

"$PY" "$HERE/check_scan.py" --sweep 198.18.0.0/24 "$OUT"/*.xml
