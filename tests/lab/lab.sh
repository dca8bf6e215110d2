#!/usr/bin/env bash
# RustMap network test lab: Linux network namespaces with real daemons.
#
#   lab.sh up                 build the lab (tears an existing one down first), start the
#                             daemons, wait until they listen, check against ground-truth.json
#   lab.sh down               kill every process in the lab namespaces, delete them, remove runtime files
#   lab.sh status             namespaces, addresses and listening sockets
#   lab.sh exec NS CMD...     run CMD inside namespace NS ("scan" or "rmlab-scan")
#
# Env: LAB_PREFIX (default rmlab) names everything; LAB_DIR (default /tmp/$LAB_PREFIX) holds configs,
# pid files, logs and data; LAB_KEEP_ON_FAIL=1 leaves a half-built lab in place for debugging.
# See docs/lab.md. Safety: nothing is created or changed in the root network namespace; every
# interface is born inside a lab namespace; the scanner namespace has no default route.
set -Eeuo pipefail

P=${LAB_PREFIX:-rmlab}
D=${LAB_DIR:-/tmp/$P}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)   # the repository: this script is tests/lab/lab.sh
PY=${LAB_PYTHON:-/usr/bin/python3}
LAB_VENV=${LAB_VENV:-/opt/rustmap-lab/venv}   # Python packages Debian lacks (install-deps.sh)
[ -x "$PY" ] || PY=$(command -v python3)
NSS=(sw scan r1 r2 h10 h11 h12 h13 h14 h16 h17 h18 h20)
# h17's TCP/IP stack: tests/lab/stack-host (smoltcp in user space), built by `up` if missing
STACK_TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $STACK_TARGET = /* ]] || STACK_TARGET=$ROOT/$STACK_TARGET   # cargo runs from $ROOT below
STACK_BIN=$STACK_TARGET/debug/rustmap-lab-stack
# h18's: tests/lab/lwip-host/lwip_host.c on Debian's liblwip, compiled by `up` into the lab's dir
LWIP_SRC=$HERE/lwip-host/lwip_host.c
WAIT_SECONDS=20

die() { echo "lab.sh: $*" >&2; exit 1; }
log() { printf '[lab %5.1fs] %s\n' "$(($(date +%s%N) / 1000000 - T0))e-3" "$*"; }
T0=$(($(date +%s%N) / 1000000))

[[ $P =~ ^[a-z][a-z0-9]{0,9}$ ]] || die "LAB_PREFIX must match ^[a-z][a-z0-9]{0,9}\$ (got '$P')"
case $D in /|/tmp|/tmp/|/etc*|/usr*|/var|/home|/root|"") die "refusing LAB_DIR=$D" ;; esac

nsx() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }
lab_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$P-($(IFS='|'; echo "${NSS[*]}"))\$" || true; }

# --------------------------------------------------------------------------------------------- down
alive() { local p; for p in "$@"; do if kill -0 "$p" 2>/dev/null; then printf '%s ' "$p"; fi; done; }

cmd_down() {
  local nss pids n
  nss=$(lab_namespaces)
  if [ -n "$nss" ]; then
    # Every process inside a lab namespace was started by the lab (or by someone using it): end them by pid.
    pids=$(for ns in $nss; do ip netns pids "$ns"; done | sort -u | tr '\n' ' ')
    if [ -n "${pids// /}" ]; then
      # shellcheck disable=SC2086
      kill -TERM $pids 2>/dev/null || true
      for n in $(seq 1 50); do  # up to 5 s
        pids=$(alive $pids)
        [ -z "${pids// /}" ] && break
        sleep 0.1
      done
      if [ -n "${pids// /}" ]; then
        echo "lab.sh: killing stubborn processes: $pids" >&2
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
        sleep 0.2
      fi
    fi
    for ns in $nss; do ip netns del "$ns"; done
  fi
  rm -rf "/etc/netns/$P-"*
  if [ -f "$D/.created-etc-netns" ]; then rmdir /etc/netns 2>/dev/null || true; fi
  if [ -d "$D" ]; then
    [ -f "$D/.rustmap-lab" ] || die "$D exists but is not a lab runtime dir (no .rustmap-lab marker); not removing it"
    rm -rf "$D"
  fi
  echo "lab.sh: down ($P)"
}

# ------------------------------------------------------------------------------------------- status
cmd_status() {
  local nss ns
  nss=" $(lab_namespaces | tr '\n' ' ') "
  if [ -z "${nss// /}" ]; then echo "lab $P: down"; return 0; fi
  echo "lab $P: runtime dir $D"
  for ns in "${NSS[@]}"; do
    if [[ $nss != *" $P-$ns "* ]]; then echo "=== $P-$ns: MISSING"; continue; fi
    echo "=== $P-$ns (processes: $(ip netns pids "$P-$ns" | wc -l))"
    ip -n "$P-$ns" -br addr show | grep -v '^lo ' | sed 's/^/  /' || true
    nsx "$ns" ss -Hltnuwp 2>/dev/null | awk '{p=$7; sub(/^users:\(\("/, "", p); sub(/".*/, "", p);
      n=split($5, a, ":"); printf "%s %s %s  %-4s %-22s %s\n", a[n], $1, $5, $1, $5, p}' |
      sort -u | sort -n -k1,1 -k2,2 -s | cut -d' ' -f4- | sed 's/^/ /' || true
  done
}

# --------------------------------------------------------------------------------------------- exec
cmd_exec() {
  [ $# -ge 2 ] || die "usage: lab.sh exec NS CMD..."
  local ns=${1#"$P-"}; shift
  exec ip netns exec "$P-$ns" "$@"
}

# ----------------------------------------------------------------------------------------------- up
link_n=0
# veth NS_A IF_A NS_B IF_B: a veth pair born directly inside the two namespaces (never in the root one)
veth() {
  link_n=$((link_n + 1))
  local ta="rmt$$a$link_n" tb="rmt$$b$link_n"
  ip link add "$ta" netns "$P-$1" type veth peer name "$tb" netns "$P-$3"
  ip -n "$P-$1" link set "$ta" name "$2"
  ip -n "$P-$3" link set "$tb" name "$4"
}

# lab_mac ADDR4: the fixed locally administered MAC of a lab address,
# 02:52:4d:<3rd octet>:00:<4th octet> ("RM"), so that scan output is the same on every run
lab_mac() {
  local o
  IFS=. read -ra o <<<"$1"
  printf '02:52:4d:%02x:00:%02x' "${o[2]}" "${o[3]}"
}

# addr_if NS IF ADDR4/LEN ADDR6/LEN: address an interface, with its lab_mac
addr_if() {
  ip -n "$P-$1" link set "$2" address "$(lab_mac "${3%/*}")"
  ip -n "$P-$1" addr add "$3" dev "$2"
  ip -n "$P-$1" addr add "$4" dev "$2" nodad
  ip -n "$P-$1" link set "$2" up
}

# lan_plug NS: plug NS's eth0 into br0 in the switch namespace
lan_plug() {
  veth "$1" eth0 sw "p-$1"
  ip -n "$P-sw" link set "p-$1" master br0 up
}
# lan_port NS ADDR4 ADDR6: plug NS's eth0 into the switch and address it
lan_port() {
  lan_plug "$1"
  addr_if "$1" eth0 "$2/24" "$3/64"
}
# no_bridge_netfilter NS: bridged frames in NS skip iptables even where br_netfilter is loaded
# (Docker loads it); these sysctls are per namespace
no_bridge_netfilter() {
  if nsx "$1" test -e /proc/sys/net/bridge/bridge-nf-call-iptables; then
    nsx "$1" sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
      net.bridge.bridge-nf-call-arptables=0
  fi
}
# tap_bridge NS: for a host whose IP stack runs in user space on a TAP device (h17): inside NS, a
# bridge br0 joins the LAN port eth0 and a TAP device tap0. The namespace's own kernel has no
# address on the LAN and IPv6 off, so it sends nothing of its own; what answers on the LAN is the
# program attached to tap0 (services_h17). tap0 is created here, inside NS, never elsewhere.
tap_bridge() {
  nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$P-$1" link add br0 type bridge stp_state 0 forward_delay 0
  no_bridge_netfilter "$1"
  nsx "$1" ip tuntap add dev tap0 mode tap
  ip -n "$P-$1" link set eth0 master br0
  ip -n "$P-$1" link set tap0 master br0
  ip -n "$P-$1" link set eth0 up
  ip -n "$P-$1" link set tap0 up
  ip -n "$P-$1" link set br0 up
}
lan_routes() {  # routes from a LAN host to the routed subnets, via r1 (no default route anywhere)
  ip -n "$P-$1" route add 198.18.1.0/24 via 198.18.0.1
  ip -n "$P-$1" route add 198.18.2.0/24 via 198.18.0.1
  ip -n "$P-$1" -6 route add fd00:18:1::/64 via fd00:18::1
  ip -n "$P-$1" -6 route add fd00:18:2::/64 via fd00:18::1
}

build_network() {
  local ns
  for ns in "${NSS[@]}"; do
    ip netns add "$P-$ns"
    ip -n "$P-$ns" link set lo up
    nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
      net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
      net.ipv6.conf.default.router_solicitations=0
    # every lab namespace resolves through the lab DNS server only (ip netns exec bind-mounts this file)
    if [ "$ns" != sw ]; then
      mkdir -p "/etc/netns/$P-$ns"
      printf 'nameserver 198.18.0.10\nsearch lab.test\noptions timeout:1 attempts:2\n' >"/etc/netns/$P-$ns/resolv.conf"
    fi
    # the scanner's /etc/hosts: localhost, and the ground truth's hosts-file names
    if [ "$ns" = scan ]; then
      "$PY" -c 'import json,sys
print("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback")
for name, addr in json.load(open(sys.argv[1]))["dns"]["hosts_file"]["entries"].items():
    print("%s %s" % (addr, name))' "$HERE/ground-truth.json" >"/etc/netns/$P-$ns/hosts"
    fi
  done
  # the switch: a bridge with no address and no IP stack of its own
  nsx sw sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$P-sw" link add br0 type bridge stp_state 0 forward_delay 0
  # A switch does not run IP filters: where br_netfilter is loaded (Docker loads it), bridged
  # frames would go through iptables in this namespace, a cost no real switch adds to a scan.
  # These sysctls are per namespace; this one only.
  no_bridge_netfilter sw
  ip -n "$P-sw" link set br0 up

  lan_port scan 198.18.0.2 fd00:18::2
  lan_port r1 198.18.0.1 fd00:18::1
  lan_port h10 198.18.0.10 fd00:18::10
  lan_port h11 198.18.0.11 fd00:18::11
  lan_port h12 198.18.0.12 fd00:18::12
  lan_port h13 198.18.0.13 fd00:18::13
  lan_port h14 198.18.0.14 fd00:18::14
  lan_port h16 198.18.0.16 fd00:18::16
  # h17: plugged in like the others, but its kernel gets no address: its IPv4 stack is smoltcp
  # on a TAP device bridged to eth0 (tap_bridge; the program is started by services_h17)
  lan_plug h17
  tap_bridge h17
  # h18: the same, with lwIP as its stack (services_h18)
  lan_plug h18
  tap_bridge h18
  for ns in scan h10 h11 h12 h13 h14 h16; do lan_routes "$ns"; done

  # r1 <-> r2 point-to-point link, r2 <-> h20 remote subnet
  veth r1 eth1 r2 eth0
  veth r2 eth1 h20 eth0
  addr_if r1 eth1 198.18.1.1/30 fd00:18:1::1/64
  addr_if r2 eth0 198.18.1.2/30 fd00:18:1::2/64
  addr_if r2 eth1 198.18.2.1/24 fd00:18:2::1/64
  addr_if h20 eth0 198.18.2.10/24 fd00:18:2::10/64
  # the r1-r2 link is narrower than the LANs: the path MTU to the remote subnet is 1400 (--mtu-discovery)
  ip -n "$P-r1" link set eth1 mtu 1400
  ip -n "$P-r2" link set eth0 mtu 1400
  ip -n "$P-r1" route add 198.18.2.0/24 via 198.18.1.2
  ip -n "$P-r1" -6 route add fd00:18:2::/64 via fd00:18:1::2
  ip -n "$P-r2" route add 198.18.0.0/24 via 198.18.1.1
  ip -n "$P-r2" -6 route add fd00:18::/64 via fd00:18:1::1
  ip -n "$P-h20" route add 198.18.0.0/24 via 198.18.2.1
  ip -n "$P-h20" route add 198.18.1.0/24 via 198.18.2.1
  ip -n "$P-h20" -6 route add fd00:18::/64 via fd00:18:2::1
  ip -n "$P-h20" -6 route add fd00:18:1::/64 via fd00:18:2::1
  # the "crowd": a routed /16 (198.19.0.0/16) whose 50 live addresses all live on h20's loopback
  ip -n "$P-scan" route add 198.19.0.0/16 via 198.18.0.1
  ip -n "$P-r1" route add 198.19.0.0/16 via 198.18.1.2
  ip -n "$P-r2" route add 198.19.0.0/16 via 198.18.2.10
  "$PY" -c 'import json,sys
for a in json.load(open(sys.argv[1]))["crowd"]["addresses"]: print(a)' "$HERE/ground-truth.json" |
    while read -r a; do ip -n "$P-h20" addr add "$a/32" dev lo; done
  for ns in r1 r2; do
    # routers forward, and answer traceroute probes without ICMP rate limiting
    nsx "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
      net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
  done
  # h13 is the fast "everything closed" oracle: no ICMP rate limit, so closed UDP ports answer at once
  nsx h13 sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0
  # h20's TCP timestamps carry no per-connection offset (tcp_timestamps=2): its clock is the
  # kernel's milliseconds since boot, so -O can tell the machine's uptime (lab_os.rs)
  nsx h20 sysctl -qw net.ipv4.tcp_timestamps=2
}

firewall_h11() {
  local t
  for t in iptables ip6tables; do
    nsx h11 "$t" -P INPUT DROP
    nsx h11 "$t" -A INPUT -i lo -j ACCEPT
    nsx h11 "$t" -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    nsx h11 "$t" -A INPUT -p tcp --dport 22 -j ACCEPT
    nsx h11 "$t" -A INPUT -p tcp --dport 80 -j ACCEPT
  done
  nsx h11 iptables -A INPUT -p tcp --dport 113 -j REJECT --reject-with icmp-admin-prohibited
  nsx h11 ip6tables -A INPUT -p tcp --dport 113 -j REJECT --reject-with icmp6-adm-prohibited
  nsx h11 iptables -A INPUT -p tcp --dport 8081 -j REJECT --reject-with tcp-reset
  nsx h11 ip6tables -A INPUT -p tcp --dport 8081 -j REJECT --reject-with tcp-reset
  # IPv6 needs neighbour discovery to be reachable at all (IPv4's ARP is not filtered by iptables)
  nsx h11 ip6tables -A INPUT -p ipv6-icmp --icmpv6-type neighbour-solicitation -j ACCEPT
  nsx h11 ip6tables -A INPUT -p ipv6-icmp --icmpv6-type neighbour-advertisement -j ACCEPT
}

# start NS NAME CMD...: run a foreground daemon inside NS, detached, log to $D/log/NS-NAME.log
start() {
  local ns=$1 name=$2; shift 2
  (cd "$D" && exec setsid ip netns exec "$P-$ns" "$@" >"$D/log/$ns-$name.log" 2>&1 </dev/null) &
  echo $! >"$D/pid/$ns-$name.pid"
}

# PRIVATE_RUN (sh -c script, CMD as "$@"): give CMD a private tmpfs /run (sshd insists on /run/sshd); ip netns exec
# already puts us in our own mount namespace with slave propagation, so nothing shows up outside.
PRIVATE_RUN='mount -n -t tmpfs -o size=1m,mode=755 rmlab-run /run && mkdir -m 755 /run/sshd && exec "$@"'

ssh_host() {  # ssh_host NS HOSTNAME
  local ns=$1 dir=$D/$1/ssh t
  mkdir -p "$dir"
  for t in ed25519:256 ecdsa:256 rsa:2048; do
    ssh-keygen -q -t "${t%:*}" -b "${t#*:}" -N '' -C "root@$2" -f "$dir/ssh_host_${t%:*}_key"
  done
  cat >"$dir/sshd_config" <<EOF
Port 22
ListenAddress 0.0.0.0
ListenAddress ::
HostKey $dir/ssh_host_ed25519_key
HostKey $dir/ssh_host_ecdsa_key
HostKey $dir/ssh_host_rsa_key
PidFile $dir/sshd.pid
UsePAM no
UseDNS no
PermitRootLogin no
PasswordAuthentication yes
KbdInteractiveAuthentication no
X11Forwarding no
AllowTcpForwarding no
MaxStartups 50:30:100
LoginGraceTime 30
EOF
  start "$ns" sshd sh -c "$PRIVATE_RUN" sh /usr/sbin/sshd -D -e -f "$dir/sshd_config"
}

nginx_host() {  # nginx_host NS HOSTNAME "listen lines"
  local ns=$1 host=$2 dir=$D/$1/nginx
  mkdir -p "$dir/www" "$dir/tmp"
  printf '<!doctype html>\n<html><head><title>RustMap lab %s</title></head><body><h1>%s</h1></body></html>\n' \
    "$host" "$host" >"$dir/www/index.html"
  cat >"$dir/nginx.conf" <<EOF
user www-data;
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log stderr warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  types { text/html html; text/plain txt; }
  default_type text/plain;
  root $dir/www;
  index index.html;
$3
}
EOF
  start "$ns" nginx /usr/sbin/nginx -e stderr -p "$dir" -c "$dir/nginx.conf"
}

services_h10() {
  local h=$D/h10 pgbin
  mkdir -p "$h"

  ssh_host h10 h10.lab.test

  # nginx: http 80, 8080; https 443, 8443 with a fresh self-signed certificate
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/O=RustMap Lab/CN=h10.lab.test" \
    -addext "subjectAltName=DNS:h10.lab.test,IP:198.18.0.10,IP:fd00:18::10" \
    -keyout "$h/tls.key" -out "$h/tls.crt" 2>/dev/null
  chmod 600 "$h/tls.key"
  # What the http-* scripts' lab tests check (crates/cli/tests/lab_scripts18.rs): /robots.txt and
  # /favicon.ico on every port; an open redirect (/go?url=...) on 80; on 8080 CORS that reflects
  # any Origin with credentials, and OPTIONS answered with an Allow list; security headers on 8443.
  nginx_host h10 h10.lab.test "
  server { listen 80 default_server; listen [::]:80 default_server; add_header X-Lab-Port 80;
           location = /go { return 302 \$arg_url; } }
  server { listen 8080 default_server; listen [::]:8080 default_server; add_header X-Lab-Port 8080;
           add_header Access-Control-Allow-Origin \$http_origin always;
           add_header Access-Control-Allow-Credentials true always;
           add_header Access-Control-Allow-Methods 'GET, POST, PUT' always;
           location / { if (\$request_method = OPTIONS) {
             add_header Allow 'GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE' always; return 204; } } }
  server { listen 443 ssl default_server; listen [::]:443 ssl default_server; add_header X-Lab-Port 443;
           ssl_certificate $h/tls.crt; ssl_certificate_key $h/tls.key; }
  server { listen 8443 ssl default_server; listen [::]:8443 ssl default_server; add_header X-Lab-Port 8443;
           add_header Strict-Transport-Security 'max-age=31536000; includeSubDomains' always;
           add_header X-Frame-Options DENY always;
           add_header X-Content-Type-Options nosniff always;
           add_header Content-Security-Policy \"default-src 'self'\" always;
           add_header Referrer-Policy no-referrer always;
           ssl_certificate $h/tls.crt; ssl_certificate_key $h/tls.key; }"
  printf 'User-agent: *\nDisallow: /admin/\nDisallow: /private/\nAllow: /public/\n' >"$D/h10/nginx/www/robots.txt"
  "$PY" -c 'import sys, zlib; sys.stdout.buffer.write(zlib.compress(b"RustMap lab favicon " * 400, 9) * 3)' \
    >"$D/h10/nginx/www/favicon.ico"

  # QUIC on udp/443 (both families: one dual-stack socket), ALPN h3, nginx's certificate: aioquic
  # from the lab's virtualenv (install-deps.sh), an implementation independent of RustMap's quinn
  [ -x "$LAB_VENV/bin/python" ] || die "no $LAB_VENV (run tests/lab/install-deps.sh)"
  start h10 quic "$LAB_VENV/bin/python" "$HERE/quic_server.py" --cert "$h/tls.crt" --key "$h/tls.key" \
    --alpn h3 "[::]:443"

  # vsftpd: anonymous, read-only
  mkdir -p "$h/ftp/pub" "$h/vsftpd-empty"
  echo "RustMap lab anonymous FTP" >"$h/ftp/pub/README.txt"
  chmod 755 "$h/ftp" "$h/ftp/pub" "$h/vsftpd-empty"
  cat >"$h/vsftpd.conf" <<EOF
listen=NO
listen_ipv6=YES
listen_port=21
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$h/ftp
local_enable=NO
write_enable=NO
secure_chroot_dir=$h/vsftpd-empty
seccomp_sandbox=NO
xferlog_enable=NO
dirmessage_enable=NO
pasv_enable=YES
pasv_min_port=40000
pasv_max_port=40100
max_clients=50
idle_session_timeout=60
data_connection_timeout=60
EOF
  start h10 vsftpd /usr/sbin/vsftpd "$h/vsftpd.conf"

  # redis
  mkdir -p "$h/redis"
  chown redis:redis "$h/redis"
  cat >"$h/redis/redis.conf" <<EOF
bind * -::*
port 6379
protected-mode no
daemonize no
supervised no
logfile ""
dir $h/redis
save ""
appendonly no
databases 4
EOF
  start h10 redis setpriv --reuid=redis --regid=redis --init-groups redis-server "$h/redis/redis.conf"

  # memcached: tcp + udp 11211 on all addresses
  start h10 memcached memcached -u memcache -p 11211 -U 11211 -m 16 -c 256

  # postgresql: a private cluster under the runtime dir
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  mkdir -p "$h/pg/run"
  echo "rustmap-lab" >"$h/pg/pwfile"
  chown -R postgres:postgres "$h/pg"
  (cd "$h/pg" && setpriv --reuid=postgres --regid=postgres --init-groups \
    "$pgbin/initdb" -D "$h/pg/data" -U postgres --pwfile="$h/pg/pwfile" --auth-local=trust \
    --auth-host=scram-sha-256 --no-locale -E UTF8 --no-sync >"$D/log/h10-initdb.log" 2>&1) ||
    { cat "$D/log/h10-initdb.log" >&2; die "initdb failed"; }
  printf 'host all all 198.18.0.0/15 scram-sha-256\nhost all all fd00::/8 scram-sha-256\n' >>"$h/pg/data/pg_hba.conf"
  start h10 postgresql setpriv --reuid=postgres --regid=postgres --init-groups \
    "$pgbin/postgres" -D "$h/pg/data" -c listen_addresses='*' -c port=5432 \
    -c unix_socket_directories="$h/pg/run" -c fsync=off -c shared_buffers=16MB -c max_connections=20 \
    -c logging_collector=off -c log_destination=stderr

  # mosquitto
  cat >"$h/mosquitto.conf" <<EOF
listener 1883
allow_anonymous true
persistence false
log_dest stderr
user mosquitto
EOF
  start h10 mosquitto /usr/sbin/mosquitto -c "$h/mosquitto.conf"
  # Retained messages for mqtt-subscribe's lab test (topic<TAB>payload in mqtt-retained.tsv):
  # published once mosquitto listens, by a one-shot client outside the pid files (it exits).
  printf 'lab/h10/status\tRustMap lab retained message\nlab/h10/firmware\t1.2.3-lab\n' >"$h/mqtt-retained.tsv"
  (nsx h10 "$PY" -c 'import socket, struct, sys, time
def pkt(kind, body): return bytes([kind]) + bytes([len(body)]) + body
def s2(b): return struct.pack(">H", len(b)) + b
for _ in range(100):
    try:
        c = socket.create_connection(("127.0.0.1", 1883), timeout=2)
        break
    except OSError:
        time.sleep(0.1)
c.sendall(pkt(0x10, s2(b"MQTT") + bytes([4, 2]) + struct.pack(">H", 30) + s2(b"lab-retain")))
assert c.recv(4)[0] == 0x20
for line in open(sys.argv[1], "rb").read().splitlines():
    topic, payload = line.split(b"\t", 1)
    c.sendall(pkt(0x31, s2(topic) + payload))
c.sendall(b"\xe0\x00")
c.close()' "$h/mqtt-retained.tsv" >"$D/log/h10-mqtt-retain.log" 2>&1 &)

  # snmpd: community "public", read-only, its own config only (-C), UDP 161 v4 + v6
  mkdir -p "$h/snmp"
  chown Debian-snmp:Debian-snmp "$h/snmp"
  cat >"$h/snmpd.conf" <<EOF
rocommunity public 198.18.0.0/15
rocommunity6 public fd00::/8
sysName h10.lab.test
sysLocation RustMap lab (namespace $P-h10)
sysContact lab@lab.test
sysServices 72
sysDescr RustMap lab h10 SNMP agent (net-snmp)
engineID rustmaplab-h10
EOF
  start h10 snmpd env SNMP_PERSISTENT_DIR="$h/snmp" MIBS= /usr/sbin/snmpd -f -Le -C -c "$h/snmpd.conf" \
    -u Debian-snmp -g Debian-snmp -I -smux,mteTrigger,mteTriggerConf -p "$h/snmp/snmpd.pid" udp:161 udp6:161

  # dnsmasq: the lab's DNS server, authoritative for lab.test and the lab's reverse zones on
  # 198.18.0.10; on fd00:18::10 an ordinary (non-authoritative) server of the same names, which
  # also answers version.bind and the DNS-SD domain sd.test
  {
    cat <<EOF
port=53
no-resolv
no-hosts
no-poll
domain-needed
user=dnsmasq
group=nogroup
pid-file=$h/dnsmasq.pid
log-facility=-
auth-server=h10.lab.test,198.18.0.10
auth-zone=lab.test,198.18.0.0/24,198.18.1.0/24,198.18.2.0/24,fd00:18::/64,fd00:18:1::/64,fd00:18:2::/64
auth-soa=1,hostmaster.lab.test,1200,120,604800
local=/lab.test/
local=/18.198.in-addr.arpa/
local=/19.198.in-addr.arpa/
local=/d.f.ip6.arpa/
txt-record=lab.test,"RustMap network lab"
# zone transfers to the scanner only (dns-zone-transfer's truth: the zone is this file)
auth-peer=198.18.0.2
# DNS-SD over unicast DNS (RFC 6763 section 11), browsing domain sd.test: two service types,
# three instances. Its own domain: dnsmasq does not serve ptr-record names inside an auth-zone.
# Answered on h10's IPv6 address only (IPv4 is the authoritative service, auth-server above).
local=/sd.test/
ptr-record=_services._dns-sd._udp.sd.test,_http._tcp.sd.test
ptr-record=_services._dns-sd._udp.sd.test,_ssh._tcp.sd.test
ptr-record=_http._tcp.sd.test,web._http._tcp.sd.test
ptr-record=_http._tcp.sd.test,files._http._tcp.sd.test
ptr-record=_ssh._tcp.sd.test,shell._ssh._tcp.sd.test
srv-host=web._http._tcp.sd.test,h10.lab.test,80
srv-host=files._http._tcp.sd.test,h11.lab.test,80
srv-host=shell._ssh._tcp.sd.test,h10.lab.test,22
txt-record=web._http._tcp.sd.test,"path=/","owner=lab"
txt-record=files._http._tcp.sd.test,"path=/files"
EOF
    # Names with several addresses come after every single-address name, so that the PTRs of
    # those addresses keep pointing at the hosts' own names (dnsmasq: the first name wins).
    "$PY" -c 'import json,sys,itertools
dns = json.load(open(sys.argv[1]))["dns"]
for name, addrs in dns["records"].items():
    print("host-record=%s,%s" % (name, ",".join(addrs)))
for name, addrs in dns.get("multi", {}).items():
    v4 = [a for a in addrs if ":" not in a]
    v6 = [a for a in addrs if ":" in a]
    for a, b in itertools.zip_longest(v4, v6, fillvalue=""):
        print("host-record=%s,%s" % (name, ",".join(x for x in (a, b) if x)))' "$HERE/ground-truth.json"
  } >"$h/dnsmasq.conf"
  start h10 dnsmasq /usr/sbin/dnsmasq -k --conf-file="$h/dnsmasq.conf"

  # a few simple banner services
  start h10 banners "$PY" "$HERE/lab_servers.py" --host h10.lab.test smtp:25 pop3:110 imap:143 irc:6667

  # SCTP (the kernel has no SCTP module): a user-space responder on raw sockets, IPv4 and IPv6
  start h10 sctp "$PY" "$HERE/sctp_responder.py" --open 2905,3868

  services_tls
}

# TLS around h10's services (stunnel4, one process, a thread per connection), for -sV's TLS
# detection. Every port here listens on IPv4 and IPv6 (one dual-stack socket: stunnel leaves
# IPV6_V6ONLY off, so a second, IPv4 accept line would collide with it).
#   9443   leaf certificate issued by a small lab CA, chain of 2 served; HTTP inside (nginx:80)
#   10443  TLS 1.0 only, security level 0 (what rustls will not speak); HTTP inside (nginx:80)
#   7379   redis inside TLS on a port no probe is made for
#   4465   smtp banner inside TLS (lab_servers.py on 25)
# The certificates' names and validity are in ground-truth.json (the lab tests compare them).
services_tls() {
  local h=$D/h10/tls
  mkdir -p "$h"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -subj "/O=RustMap Lab/CN=RustMap Lab CA" -keyout "$h/ca.key" -out "$h/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/O=RustMap Lab/CN=chain.h10.lab.test" \
    -keyout "$h/leaf.key" -out "$h/leaf.csr" 2>/dev/null
  printf 'subjectAltName=DNS:chain.h10.lab.test,DNS:h10.lab.test\nbasicConstraints=CA:FALSE\n' >"$h/leaf.ext"
  openssl x509 -req -in "$h/leaf.csr" -CA "$h/ca.crt" -CAkey "$h/ca.key" -CAcreateserial -days 30 \
    -extfile "$h/leaf.ext" -out "$h/leaf.crt" 2>/dev/null
  cat "$h/leaf.crt" "$h/ca.crt" >"$h/chain.crt"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/O=RustMap Lab/CN=legacy.h10.lab.test" \
    -keyout "$h/legacy.key" -out "$h/legacy.crt" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/O=RustMap Lab/CN=wrapped.h10.lab.test" \
    -keyout "$h/wrapped.key" -out "$h/wrapped.crt" 2>/dev/null
  chmod 600 "$h"/*.key
  cat >"$h/stunnel.conf" <<EOF
foreground = yes
pid =
debug = notice
[chain]
accept = :::9443
connect = 127.0.0.1:80
cert = $h/chain.crt
key = $h/leaf.key
[legacy]
accept = :::10443
connect = 127.0.0.1:80
cert = $h/legacy.crt
key = $h/legacy.key
sslVersionMin = TLSv1
sslVersionMax = TLSv1
securityLevel = 0
ciphers = DEFAULT:@SECLEVEL=0
[redis]
accept = :::7379
connect = 127.0.0.1:6379
cert = $h/wrapped.crt
key = $h/wrapped.key
[smtp]
accept = :::4465
connect = 127.0.0.1:25
cert = $h/wrapped.crt
key = $h/wrapped.key
EOF
  start h10 stunnel /usr/bin/stunnel4 "$h/stunnel.conf"
}

services_h11() {
  ssh_host h11 h11.lab.test
  start h11 http "$PY" "$HERE/lab_servers.py" --host h11.lab.test http:80
}

services_h12() {
  start h12 tarpit "$PY" "$HERE/lab_servers.py" --host h12.lab.test tarpit:2222 hostile:2223 ntp:123
}

# h14: the second services host, for -sV coverage: real Debian daemons (directory, file sharing,
# remote desktop, time, VoIP, VPN, RPC, X11, rsync) and, for what Debian packages no daemon of,
# lab_servers.py's protocol fixtures. Every daemon runs in the foreground with its own
# configuration under $D/h14 and writes nothing outside it (a private /run or /tmp where a daemon
# insists on those). IPv4 only: nmbd, pptpd and the SIP proxy listen on IPv4.
services_h14() {
  local h=$D/h14
  mkdir -p "$h"

  # slapd (OpenLDAP): a dc=lab,dc=test database with two people (loaded with slapadd before
  # slapd starts: ldap-search's truth); anonymous reads of the root DSE and the entries
  mkdir -p "$h/ldap/db"
  cat >"$h/ldap/slapd.conf" <<EOF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $h/ldap/slapd.pid
argsfile $h/ldap/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 10485760
suffix "dc=lab,dc=test"
rootdn "cn=admin,dc=lab,dc=test"
directory $h/ldap/db
EOF
  cat >"$h/ldap/lab.ldif" <<EOF
dn: dc=lab,dc=test
objectClass: dcObject
objectClass: organization
dc: lab
o: RustMap Lab

dn: ou=people,dc=lab,dc=test
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=lab,dc=test
objectClass: inetOrgPerson
uid: alice
cn: Alice Example
sn: Example
mail: alice@lab.test
title: Network Engineer

dn: uid=bob,ou=people,dc=lab,dc=test
objectClass: inetOrgPerson
uid: bob
cn: Bob Example
sn: Example
mail: bob@lab.test
title: Security Analyst
EOF
  slapadd -q -f "$h/ldap/slapd.conf" -l "$h/ldap/lab.ldif" >"$D/log/h14-slapadd.log" 2>&1 \
    || die "slapadd failed (see $D/log/h14-slapadd.log)"
  chown -R openldap:openldap "$h/ldap"
  start h14 slapd /usr/sbin/slapd -d 0 -u openldap -g openldap -h "ldap:///" -f "$h/ldap/slapd.conf"

  # Samba: smbd (139, 445) and nmbd (137, 138/udp), a read-only guest share; every state
  # directory under $h/samba. Dialects NT1 (SMBv1) to SMB3_11 and signing enabled but not
  # required, spelled out: the smb-* script tests (lab_scripts_smb.rs) read these lines.
  mkdir -p "$h/samba/"{lock,state,cache,pid,private,log,ncalrpc,share}
  cat >"$h/samba/smb.conf" <<EOF
[global]
  workgroup = RUSTMAPLAB
  netbios name = H14
  server string = RustMap lab h14
  server role = standalone server
  lock directory = $h/samba/lock
  state directory = $h/samba/state
  cache directory = $h/samba/cache
  pid directory = $h/samba/pid
  private dir = $h/samba/private
  ncalrpc dir = $h/samba/ncalrpc
  log file = $h/samba/log/%m.log
  interfaces = eth0
  disable spoolss = yes
  load printers = no
  printcap name = /dev/null
  map to guest = Bad User
  smb ports = 445 139
  server min protocol = NT1
  server max protocol = SMB3_11
  server signing = auto
  winbindd socket directory = $h/samba/winbindd
[pub]
  path = $h/samba/share
  read only = yes
  guest ok = yes
EOF
  start h14 smbd /usr/sbin/smbd -F --no-process-group --debug-stdout -s "$h/samba/smb.conf"
  start h14 nmbd /usr/sbin/nmbd -F --no-process-group --debug-stdout -s "$h/samba/smb.conf"

  # xrdp (RDP 3389) with a fresh self-signed certificate; no session manager (detection only
  # needs the connection sequence); xrdp insists on /run/xrdp
  mkdir -p "$h/xrdp"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/O=RustMap Lab/CN=h14.lab.test" \
    -keyout "$h/xrdp/key.pem" -out "$h/xrdp/cert.pem" 2>/dev/null
  chmod 600 "$h/xrdp/key.pem"
  cat >"$h/xrdp/xrdp.ini" <<EOF
[Globals]
ini_version=1
fork=true
port=3389
security_layer=negotiate
crypt_level=high
certificate=$h/xrdp/cert.pem
key_file=$h/xrdp/key.pem
ssl_protocols=TLSv1.2, TLSv1.3
[Logging]
LogFile=$h/xrdp/xrdp.log
LogLevel=INFO
EnableSyslog=false
EnableConsole=true
ConsoleLevel=WARNING
[Xorg]
name=Xorg
lib=libxup.so
username=ask
password=ask
ip=127.0.0.1
port=-1
code=20
EOF
  start h14 xrdp sh -c 'mount -n -t tmpfs -o size=1m,mode=755 rmlab-run /run && mkdir -p /run/xrdp/sockdir && exec "$@"' \
    sh /usr/sbin/xrdp --nodaemon --config "$h/xrdp/xrdp.ini"

  # chrony as an NTP server. -x: chronyd never adjusts the clock (the lab shares the host's
  # clock); "local stratum 10" makes it serve time without upstream sources; no command port.
  mkdir -p "$h/chrony"
  chown _chrony:_chrony "$h/chrony"
  cat >"$h/chrony/chrony.conf" <<EOF
local stratum 10
allow 198.18.0.0/15
allow fd00::/8
port 123
cmdport 0
pidfile $h/chrony/chronyd.pid
driftfile $h/chrony/drift
EOF
  start h14 chronyd /usr/sbin/chronyd -x -d -u _chrony -f "$h/chrony/chrony.conf"

  # rsync daemon: one read-only module
  mkdir -p "$h/rsync/pub"
  echo "RustMap lab rsync module" >"$h/rsync/pub/README.txt"
  cat >"$h/rsync/rsyncd.conf" <<EOF
port = 873
use chroot = no
uid = nobody
gid = nogroup
pid file = $h/rsync/rsyncd.pid
[pub]
  path = $h/rsync/pub
  comment = RustMap lab
  read only = yes
EOF
  start h14 rsync /usr/bin/rsync --daemon --no-detach --config="$h/rsync/rsyncd.conf"

  # rpcbind (ONC RPC portmapper, 111 tcp+udp); its state and socket live in /run
  start h14 rpcbind sh -c "$PRIVATE_RUN" sh /usr/sbin/rpcbind -f -w

  # Xvfb: X11 on TCP 6000 with access control off (the lab's X server is a detection target);
  # a private /tmp for its lock file, no unix socket
  start h14 xvfb sh -c 'mount -n -t tmpfs -o size=4m,mode=1777 rmlab-tmp /tmp && exec "$@"' \
    sh /usr/bin/Xvfb :0 -listen tcp -nolisten unix -ac -screen 0 640x480x16

  # x11vnc (VNC 5900) on that X server, VNC authentication with a password file (vnc-info's
  # truth: security type 2). It waits (bounded) for Xvfb to listen first.
  mkdir -p "$h/vnc"
  x11vnc -storepasswd rustmaplab "$h/vnc/passwd" >/dev/null 2>&1
  start h14 x11vnc sh -c 'for _ in $(seq 50); do (echo >/dev/tcp/127.0.0.1/6000) 2>/dev/null && break; sleep 0.1; done
exec x11vnc -display 127.0.0.1:0 -rfbport 5900 -rfbauth "$1" -forever -shared -noxdamage -noshm -nolookup -quiet' \
    sh "$h/vnc/passwd"

  # FreeRDP's shadow server (RDP 3390) with NLA only (rdp-ntlm-info's truth: its NTLM challenge
  # names this namespace's host; xrdp on 3389 has no CredSSP). It shadows its own 24-bit Xvfb
  # (:1, unix socket only, in a private /tmp: the lab's :0 is 16-bit, which FreeRDP refuses).
  # Xvfb can take seconds to start on a loaded machine: wait up to 30 s for its socket (its
  # output goes to this daemon's log: the private /tmp hides the lab's directory).
  mkdir -p "$h/freerdp"
  start h14 freerdp env HOME="$h/freerdp" sh -c 'mount -n -t tmpfs -o size=8m,mode=1777 rmlab-tmp /tmp || exit 1
Xvfb :1 -nolisten tcp -screen 0 640x480x24 &
for _ in $(seq 300); do [ -e /tmp/.X11-unix/X1 ] && break; sleep 0.1; done
# The socket can exist before the server takes clients ("failed to open display :1", seen on a
# loaded machine): a shadow server that fails within 3 s of its start is started again, 5 times
# at most; one that ran longer was stopped on purpose (lab.sh down) and is not.
for try in 1 2 3 4 5; do
  sleep 0.5
  t0=$(date +%s)
  DISPLAY=:1 freerdp-shadow-cli /port:3390 /sec:nla -auth
  [ $(($(date +%s) - t0)) -ge 3 ] && exit 1
  echo "lab.sh: freerdp-shadow-cli failed at start (try $try of 5)" >&2
done
exit 1'

  # MariaDB (3306): a fresh data directory, TCP on the lab address only, no unix socket users
  mkdir -p "$h/mysql/data" "$h/mysql/run"
  chown -R mysql:mysql "$h/mysql"
  mariadb-install-db --no-defaults --user=mysql --datadir="$h/mysql/data" --auth-root-authentication-method=socket \
    >"$D/log/h14-mariadb-install.log" 2>&1 || die "mariadb-install-db failed (see $D/log/h14-mariadb-install.log)"
  # A user any host may try (else the server answers "Host ... is not allowed to connect" before
  # its handshake, which carries the version mysql-info reports)
  printf "CREATE USER IF NOT EXISTS 'lab'@'%%' IDENTIFIED BY 'rustmaplab';\n" >"$h/mysql/init.sql"
  chown mysql:mysql "$h/mysql/init.sql"
  start h14 mariadb /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$h/mysql/data" \
    --init-file="$h/mysql/init.sql" \
    --socket="$h/mysql/run/mysqld.sock" --pid-file="$h/mysql/run/mysqld.pid" --port=3306 \
    --bind-address=198.18.0.14 --skip-name-resolve --log-error="$D/log/h14-mariadb-error.log"

  # telnet (23): inetutils' telnetd under inetutils' inetd (foreground, its own configuration)
  mkdir -p "$h/inetd"
  printf 'telnet stream tcp nowait root /usr/sbin/telnetd telnetd\n' >"$h/inetd/inetd.conf"
  start h14 inetd /usr/sbin/inetutils-inetd -d "$h/inetd/inetd.conf"

  # winbindd: Dovecot's NTLM goes through winbind's ntlm_auth (Debian's Dovecot 2.3 has no NTLM
  # of its own); its socket directory is in this lab's runtime directory (smb.conf above)
  mkdir -p "$h/samba/winbindd"
  start h14 winbindd /usr/sbin/winbindd -F --no-process-group --debug-stdout -s "$h/samba/smb.conf"
  printf '#!/bin/sh\nexec /usr/bin/ntlm_auth --configfile=%s "$@"\n' "$h/samba/smb.conf" >"$h/samba/ntlm_auth"
  chmod 755 "$h/samba/ntlm_auth"

  # Postfix (SMTP 25) in the foreground with its own configuration directory and queue; it
  # accepts nothing for delivery (smtp-commands' truth: the EHLO keywords this main.cf implies,
  # SIZE from message_size_limit and no VRFY)
  local pf=$h/postfix
  mkdir -p "$pf/queue" "$pf/data"
  sed 's/^\([a-z]*[[:space:]]\+\(inet\|unix\|fifo\|pass\|unix-dgram\)[[:space:]]\+[-ny][[:space:]]\+[-ny][[:space:]]\+\)y/\1n/' \
    /etc/postfix/master.cf >"$pf/master.cf"   # no chroot: the queue is outside /var/spool
  cat >"$pf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
mail_owner = postfix
setgid_group = postdrop
myhostname = h14.lab.test
mydomain = lab.test
mydestination = h14.lab.test
inet_interfaces = 198.18.0.14
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
message_size_limit = 10240000
disable_vrfy_command = yes
smtpd_tls_security_level = none
maillog_file = /dev/stdout
alias_maps =
alias_database =
local_transport = error:local delivery disabled
EOF
  postfix -c "$pf" check >"$D/log/h14-postfix-check.log" 2>&1 || true
  chown postfix:postfix "$pf/data"
  start h14 postfix postfix -c "$pf" start-fg

  # Dovecot IMAP (143) and POP3 (110): PLAIN and NTLM (imap-ntlm-info's truth: the challenge names H14, from
  # smb.conf), one user in a passwd-file, no mail is ever delivered
  mkdir -p "$h/dovecot/run" "$h/dovecot/mail"
  printf 'lab:{PLAIN}rustmaplab:1000:1000::%s::\n' "$h/dovecot/mail" >"$h/dovecot/users"
  cat >"$h/dovecot/dovecot.conf" <<EOF
protocols = imap pop3
listen = 198.18.0.14
base_dir = $h/dovecot/run
state_dir = $h/dovecot/run
log_path = $D/log/h14-dovecot-daemon.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain ntlm
auth_use_winbind = yes
auth_winbind_helper_path = $h/samba/ntlm_auth
mail_location = maildir:$h/dovecot/mail
default_login_user = dovenull
default_internal_user = dovecot
passdb {
  driver = passwd-file
  args = $h/dovecot/users
}
userdb {
  driver = passwd-file
  args = $h/dovecot/users
}
EOF
  chown -R dovecot:dovecot "$h/dovecot/run"
  start h14 dovecot /usr/sbin/dovecot -F -c "$h/dovecot/dovecot.conf"

  # pptpd (PPTP control connections on 1723). Detection stops at the control connection, so no
  # call is ever placed; even so, `--ppp /bin/false` means no PPP link could ever come up, and the
  # tunnel addresses it is configured with are unused lab addresses (198.18.14.0/24, in-namespace).
  mkdir -p "$h/pptpd"
  printf 'option %s\nlocalip 198.18.14.1\nremoteip 198.18.14.2-9\n' "$h/pptpd/options" >"$h/pptpd/pptpd.conf"
  printf 'name pptpd\nrefuse-pap\nrefuse-chap\nrefuse-mschap\nrequire-mschap-v2\n' >"$h/pptpd/options"
  start h14 pptpd /usr/sbin/pptpd -f --ppp /bin/false -c "$h/pptpd/pptpd.conf" -o "$h/pptpd/options" \
    -p "$h/pptpd/pptpd.pid"

  # Kamailio SIP proxy (5060 udp+tcp): a stateless script that answers OPTIONS with 200 OK and
  # an Allow list (sip-methods), and REGISTER with 401 for the users alice and 101, 404 for
  # anyone else (sip-enum-users)
  mkdir -p "$h/kamailio"
  cat >"$h/kamailio/kamailio.cfg" <<EOF
#!KAMAILIO
debug=1
log_stderror=yes
fork=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:198.18.0.14:5060
listen=tcp:198.18.0.14:5060
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "pv.so"
request_route {
  if (method == "OPTIONS") {
    append_to_reply("Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REGISTER\r\n");
    sl_send_reply("200", "OK");
    exit;
  }
  if (method == "REGISTER") {
    if (\$tU == "alice" || \$tU == "101") {
      append_to_reply("WWW-Authenticate: Digest realm=\"lab.test\", nonce=\"rustmaplab\"\r\n");
      sl_send_reply("401", "Unauthorized");
      exit;
    }
    sl_send_reply("404", "Not Found");
    exit;
  }
  sl_send_reply("501", "Not Implemented");
}
EOF
  start h14 kamailio /usr/sbin/kamailio -DD -E -f "$h/kamailio/kamailio.cfg" -P "$h/kamailio/kamailio.pid" \
    -Y "$h/kamailio" -m 32 -M 8

  # protocol fixtures for services Debian has no daemon of (lab_servers.py FIXTURES)
  start h14 fixtures "$PY" "$HERE/lab_servers.py" --host h14.lab.test rtsp:554 mssql:1433 oracle:1521 \
    nfs:2049 docker:2375 jdwp:5005 amqp:5672 kubernetes:8001 elasticsearch:9200 mongodb:27017
}

# h16: the hostile host. Peers that misbehave on purpose, for "-sV -sC -p- finishes in bounded time
# and memory, and nothing raw reaches any output" (crates/cli/tests/lab_hostile.rs): endlessh on 22,
# and hostile_server.py for the rest (see its docstring). Every TCP port without a real listener is
# redirected (iptables nat, inside h16 only) to the portspoof-like responder on 4444, so all 65535
# TCP ports are open. IPv4 only: fd00:18::16 is addressed but every port there is closed.
H16_TCP="22 53 80 443 2222 2323 4444 8080"
firewall_h16() {
  local port
  nsx h16 iptables -t nat -N RM_SPOOF
  for port in $H16_TCP; do nsx h16 iptables -t nat -A RM_SPOOF -p tcp --dport "$port" -j RETURN; done
  nsx h16 iptables -t nat -A RM_SPOOF -p tcp -j REDIRECT --to-ports 4444
  nsx h16 iptables -t nat -A PREROUTING -i eth0 -d 198.18.0.16 -p tcp -j RM_SPOOF
}

# hostile_chain DIR: a TLS chain of about 1 MiB (leaf + 28 intermediates + root, each CA carrying
# 900 padding SANs), one EC key for all of them; made at every up, never committed
hostile_chain() {
  local h=$1 i esc
  esc=$(printf '\033')
  openssl ecparam -name prime256v1 -genkey -noout -out "$h/key.pem" 2>/dev/null
  chmod 600 "$h/key.pem"
  { printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\nsubjectAltName=@alt\n[alt]\n'
    for i in $(seq 1 900); do printf 'DNS.%d=pad%04d.chain-padding.h16.lab.test\n' "$i" "$i"; done; } >"$h/ca.ext"
  printf 'subjectAltName=DNS:h16.lab.test,IP:198.18.0.16\nbasicConstraints=CA:FALSE\n' >"$h/leaf.ext"
  openssl req -new -x509 -key "$h/key.pem" -days 30 -subj "/O=RustMap Lab hostile/CN=Hostile Root" \
    -out "$h/c0.pem" 2>/dev/null
  for i in $(seq 1 28); do
    openssl req -new -key "$h/key.pem" -subj "/O=RustMap Lab hostile/CN=Hostile Intermediate $i" \
      -out "$h/r.csr" 2>/dev/null
    openssl x509 -req -in "$h/r.csr" -CA "$h/c$((i - 1)).pem" -CAkey "$h/key.pem" -set_serial "$i" -days 30 \
      -extfile "$h/ca.ext" -out "$h/c$i.pem" 2>/dev/null
  done
  # the leaf's subject carries an escape sequence and markup (UTF8String)
  openssl req -new -key "$h/key.pem" -utf8 -subj "/O=RustMap Lab ${esc}[2J<script>&amp;/CN=h16.lab.test" \
    -out "$h/r.csr" 2>/dev/null
  openssl x509 -req -in "$h/r.csr" -CA "$h/c28.pem" -CAkey "$h/key.pem" -set_serial 100 -days 30 \
    -extfile "$h/leaf.ext" -out "$h/leaf.pem" 2>/dev/null
  cat "$h/leaf.pem" $(for i in $(seq 28 -1 0); do echo "$h/c$i.pem"; done) >"$h/chain.pem"
}

services_h16() {
  local h=$D/h16
  mkdir -p "$h"
  firewall_h16
  hostile_chain "$h"
  # endlessh (Debian): an endless SSH pre-banner, a random line every second; own (empty) config
  : >"$h/endlessh.conf"
  start h16 endlessh /usr/bin/endlessh -4 -f "$h/endlessh.conf" -p 22 -d 1000 -l 255 -m 1024 -v
  start h16 hostile "$PY" "$HERE/hostile_server.py" --cert "$h/chain.pem" --key "$h/key.pem" \
    dns:53 bomb:80 tls:443 sshbig:2222 drip:2323 redirect:8080
  # the portspoof-like responder has a process of its own (it takes every other port's connections)
  start h16 spoof "$PY" "$HERE/hostile_server.py" spoof:4444
}

# h17: the smoltcp host (docs/lab.md). rustmap-lab-stack (tests/lab/stack-host) attaches to tap0
# and is the host: ARP, ICMP echo, RSTs and the TCP listeners (16 sockets per port) are smoltcp's.
# IPv4 only; its default route (r1, which routes nowhere outside the lab) is for its answers.
H17_TCP=80,8080
services_h17() {
  start h17 stack "$STACK_BIN" --tap tap0 --addr 198.18.0.17/24 --gw 198.18.0.1 \
    --mac "$(lab_mac 198.18.0.17)" --tcp "$H17_TCP"
}

# h18: the lwIP host (docs/lab.md). rustmap-lab-lwip (tests/lab/lwip-host, C on Debian's liblwip)
# attaches to tap0 (lwIP's PRECONFIGURED_TAPIF) and is the host: ARP, ICMP, RSTs and the
# listeners are lwIP's. IPv4 only, like h17.
H18_TCP=80,8080
services_h18() {
  start h18 lwip env PRECONFIGURED_TAPIF=tap0 "$D/rustmap-lab-lwip" 198.18.0.18 255.255.255.0 \
    198.18.0.1 "$(lab_mac 198.18.0.18)" "$H18_TCP"
}

# lwip_bin: compile h18's program (under a second with cc; liblwip-dev from install-deps.sh)
lwip_bin() {
  command -v cc >/dev/null || die "no cc to build h18's lwIP host (tests/lab/install-deps.sh installs gcc)"
  pkg-config --exists lwip 2>/dev/null || die "no liblwip-dev for h18's lwIP host (tests/lab/install-deps.sh)"
  # shellcheck disable=SC2046  # pkg-config's flags are words
  cc -O1 -Wall -o "$D/rustmap-lab-lwip" "$LWIP_SRC" $(pkg-config --cflags --libs lwip) -lpthread ||
    die "cc $LWIP_SRC failed"
}

# stack_bin: build rustmap-lab-stack (h17's stack) if it is not there yet
stack_bin() {
  [ -x "$STACK_BIN" ] && return 0
  command -v cargo >/dev/null || die "no $STACK_BIN and no cargo to build it (cargo build -p rustmap-lab-stack)"
  log "building rustmap-lab-stack (h17's TCP/IP stack; no $STACK_BIN)"
  (cd "$ROOT" && cargo build -q -p rustmap-lab-stack) || die "cargo build -p rustmap-lab-stack failed"
  [ -x "$STACK_BIN" ] || die "cargo build -p rustmap-lab-stack made no $STACK_BIN"
}

services_h20() {
  ssh_host h20 h20.lab.test
  nginx_host h20 h20.lab.test "
  server { listen 80 default_server; listen [::]:80 default_server; }"
}

# wait_listening: poll (bounded) until every namespace listens on what ground-truth.json says.
# SCTP has no listening sockets (the kernels have no SCTP): a host with open SCTP ports needs
# sctp_responder.py's raw sockets for IP protocol 132 instead, IPv4 ("raw4") and IPv6 ("raw6").
# A host whose stack runs in user space (user_space_stack: h17, h18) has no kernel sockets at all:
# its program's log says "listening tcp/PORT" once the port's sockets listen ("log-tcp").
wait_listening() {
  local deadline=$(($(date +%s) + WAIT_SECONDS)) want ns proto port missing line pidf flags
  want=$("$PY" -c 'import json,sys
for h in json.load(open(sys.argv[1]))["hosts"]:
    us = h.get("user_space_stack")
    for proto in ("tcp", "udp"):
        for p in h[proto]["open"]:
            if us:
                print(h["ns"], "log-" + proto, p["port"], us["process"])
            else:
                print(h["ns"], proto, p["port"], p["daemon"])
    daemons = sorted({p["daemon"] for p in h.get("sctp", {}).get("open", [])})
    for fam in ("raw4", "raw6") if h.get("ipv6_same_ports") else ("raw4",):
        for d in daemons:
            print(h["ns"], fam, 132, d)' "$HERE/ground-truth.json")
  while :; do
    # a daemon that already died will not come up: fail now, with its log
    for pidf in "$D"/pid/*.pid; do
      if ! kill -0 "$(cat "$pidf")" 2>/dev/null; then
        line=$(basename "$pidf" .pid)
        echo "lab.sh: daemon $line exited during start-up; its log ($D/log/$line.log):" >&2
        tail -n 40 "$D/log/$line.log" | sed 's/^/    /' >&2
        return 1
      fi
    done
    missing=""
    declare -A sockets=()
    while read -r ns proto port daemon; do
      if [[ $proto = log-* ]]; then  # user-space stack: its log, $D/log/NS-PROCESS.log
        grep -qF "listening ${proto#log-}/$port " "$D/log/$ns-$daemon.log" 2>/dev/null ||
          missing+="$ns:${proto#log-}/$port($daemon,user-space) "
        continue
      fi
      case $proto in tcp) flags=-t ;; udp) flags=-u ;; raw4) flags=-w4 ;; raw6) flags=-w6 ;; esac
      [ -n "${sockets[$ns$proto]+x}" ] || sockets[$ns$proto]=$(nsx "$ns" ss -Hln "$flags" | awk '{print $4}')
      grep -qE ":$port\$" <<<"${sockets[$ns$proto]}" || missing+="$ns:$proto/$port($daemon) "
    done <<<"$want"
    unset sockets
    [ -z "$missing" ] && return 0
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "lab.sh: not listening after ${WAIT_SECONDS}s: $missing" >&2
      for ns in $(printf '%s\n' $missing | cut -d: -f1 | sort -u); do
        for pidf in "$D/log/$ns-"*.log; do
          [ -e "$pidf" ] || { echo "--- (no daemon logs for $ns)" >&2; continue; }
          echo "--- $pidf" >&2
          tail -n 20 "$pidf" | sed 's/^/    /' >&2
        done
      done
      return 1
    fi
    sleep 0.2
  done
}

cmd_up() {
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  stack_bin
  if [ -n "$(lab_namespaces)" ] || [ -d "$D" ]; then
    log "lab $P exists: tearing it down first"
    cmd_down
  fi
  trap 'on_fail $LINENO "$BASH_COMMAND"' ERR
  mkdir -p "$D/log" "$D/pid"
  chmod 755 "$D"
  touch "$D/.rustmap-lab"
  [ -d /etc/netns ] || { mkdir -p /etc/netns; touch "$D/.created-etc-netns"; }

  log "network"
  build_network
  firewall_h11
  log "daemons"
  services_h10
  services_h11
  services_h12
  services_h14
  services_h16
  services_h17
  lwip_bin
  services_h18
  services_h20
  log "waiting for listeners (up to ${WAIT_SECONDS}s)"
  wait_listening
  log "checking listeners against ground-truth.json"
  "$PY" "$HERE/lab_check.py" listeners
  log "probing from $P-scan"
  nsx scan "$PY" "$HERE/lab_check.py" probe
  trap - ERR
  log "lab $P is up (runtime dir $D)"
}

on_fail() {
  trap - ERR
  echo "lab.sh: up FAILED at line $1: $2 (logs in $D/log)" >&2
  if [ "${LAB_KEEP_ON_FAIL:-0}" = 1 ]; then
    echo "lab.sh: LAB_KEEP_ON_FAIL=1: leaving the lab in place; run 'lab.sh down' when done" >&2
  else
    cmd_down >&2 || true
  fi
  exit 1
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  exec) shift; cmd_exec "$@" ;;
  *) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
