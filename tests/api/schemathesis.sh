#!/usr/bin/env bash
# schemathesis (PyPI) against a running `rustmap --api`, generated from its own OpenAPI document.
# Both run inside a network namespace of their own with only loopback up, and the server has an
# allow-list of 127.0.0.0/8: whatever scans the generated requests start, no packet (not even a
# DNS query for a generated name) can leave the namespace.
#
#   tests/api/schemathesis.sh RUSTMAP_BINARY [MAX_EXAMPLES]
#
# Checks: all of schemathesis's but positive_data_acceptance (the schema cannot say that -p and
# --top-ports conflict, so some schema-valid bodies are rightly refused). WebSocket routes are not
# HTTP: they are left out here and tested in crates/api/tests/api.rs. /api/vuln/update fetches
# from a static NVD page and KEV catalog served on the namespace's loopback (the fuzz seeds), so
# the CVE database update runs for real and never looks further.
set -euo pipefail
BIN=${1:?usage: schemathesis.sh RUSTMAP_BINARY [MAX_EXAMPLES]}
EXAMPLES=${2:-30}
ST=${ST:-${LAB_VENV:-/opt/rustmap-lab/venv}/bin/st}
NS="rmst-$$"
PORT=18181
WORK=$(mktemp -d)
SERVER=""
FEED_SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
  [ -n "$FEED_SERVER" ] && kill "$FEED_SERVER" 2>/dev/null && wait "$FEED_SERVER" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link set lo up
FEEDS="$WORK/feeds"
mkdir -p "$FEEDS"
cp "$(dirname "$0")/../../fuzz/seeds/vuln_feeds/nvd-page.json" "$FEEDS/nvd"
cp "$(dirname "$0")/../../fuzz/seeds/vuln_feeds/kev.json" "$FEEDS/kev"
ip netns exec "$NS" python3 -m http.server 18182 --bind 127.0.0.1 --directory "$FEEDS" >/dev/null 2>&1 &
FEED_SERVER=$!
HOME="$WORK" ip netns exec "$NS" "$BIN" --api --listen "127.0.0.1:$PORT" --api-key st-key \
  --api-allow 127.0.0.0/8 --vuln-nvd-url http://127.0.0.1:18182/nvd --vuln-kev-url http://127.0.0.1:18182/kev \
  2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 1 100); do
  ip netns exec "$NS" curl -sf "http://127.0.0.1:$PORT/api/system/health" >/dev/null 2>&1 && break
  sleep 0.1
done
cd "$WORK"
status=0
ip netns exec "$NS" timeout 600 "$ST" run "http://127.0.0.1:$PORT/api/openapi.json" \
  -H "Authorization: Bearer st-key" --checks all --exclude-checks positive_data_acceptance \
  --exclude-path-regex '/events$' --max-examples "$EXAMPLES" --no-color || status=$?
echo "--- server log"
cat "$WORK/server.log"
exit $status
