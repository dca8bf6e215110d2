#!/usr/bin/env bash
# Install what the RustMap network lab (tests/lab/lab.sh) needs, via apt-get.
# Idempotent and fast when everything is already installed (no apt-get at all then).
# A policy-rc.d that exits 101 is put in place during the install so that package
# postinst scripts never start daemons in the root namespace; it is removed afterwards
# only if this script created it.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: must run as root" >&2
  exit 1
fi

# package -> a file or command proving it is installed
declare -A PROBE=(
  [iproute2]=ip
  [iptables]=iptables
  [procps]=sysctl
  [iputils-ping]=ping
  [python3]=/usr/bin/python3
  [python3-venv]=/usr/bin/python3
  [openssh-server]=/usr/sbin/sshd
  [nginx]=/usr/sbin/nginx
  [vsftpd]=/usr/sbin/vsftpd
  [redis-server]=redis-server
  [memcached]=memcached
  [postgresql]=postgresql
  [mosquitto]=/usr/sbin/mosquitto
  [snmpd]=/usr/sbin/snmpd
  [dnsmasq]=/usr/sbin/dnsmasq
  [slapd]=/usr/sbin/slapd
  [samba]=/usr/sbin/smbd
  [xrdp]=/usr/sbin/xrdp
  [chrony]=/usr/sbin/chronyd
  [rsync]=/usr/bin/rsync
  [rpcbind]=/usr/sbin/rpcbind
  [xvfb]=/usr/bin/Xvfb
  [pptpd]=/usr/sbin/pptpd
  [kamailio]=/usr/sbin/kamailio
  [openssl]=openssl
  [nmap]=nmap
  [ndiff]=ndiff
  [libxml2-utils]=xmllint
  [masscan]=masscan
  [zmap]=/usr/sbin/zmap
  [nftables]=/usr/sbin/nft
  [time]=/usr/bin/time
  [stunnel4]=/usr/bin/stunnel4
  [chromium]=/usr/bin/chromium
  # The packaging tests (crates/cli/tests/package.rs, lab capability test): shells whose
  # completion scripts are loaded, man to render the page, dpkg-shlibdeps for cargo-deb's
  # Depends, setcap/getcap for the capability-only scan.
  [zsh]=/usr/bin/zsh
  [fish]=/usr/bin/fish
  [man-db]=/usr/bin/man
  [dpkg-dev]=/usr/bin/dpkg-shlibdeps
  [libcap2-bin]=/usr/sbin/setcap
  # Evasion, proxy and topology tests (issue 21): captures on the target's side, a real SOCKS5
  # proxy, Graphviz to render the topology graph.
  [tshark]=/usr/bin/tshark
  # Distributed scans (crates/cli/tests/lab_distributed.rs, bench/distributed.py): a real NATS
  # server with JetStream, started by the tests themselves in the lab.
  [nats-server]=/usr/sbin/nats-server
  [tcpdump]=/usr/bin/tcpdump
  [dante-server]=/usr/sbin/danted
  [graphviz]=/usr/bin/dot
  # The TUI test (crates/cli/tests/lab_tui.rs) drives `rustmap --tui` in a private tmux server.
  [tmux]=/usr/bin/tmux
  # The hostile host (h16): a real SSH tarpit from Debian.
  [endlessh]=/usr/bin/endlessh
  # Issue 18's scripts against real daemons on h14: VNC (x11vnc on the lab's Xvfb), MariaDB,
  # telnet (inetutils' telnetd under inetutils' inetd) and IMAP with NTLM (Dovecot).
  [x11vnc]=/usr/bin/x11vnc
  [mariadb-server]=/usr/sbin/mariadbd
  [inetutils-telnetd]=/usr/sbin/telnetd
  [inetutils-inetd]=/usr/sbin/inetutils-inetd
  [dovecot-imapd]=/usr/sbin/dovecot
  # NTLM for Dovecot: Debian's Dovecot has no NTLM of its own; winbind's ntlm_auth does it
  [winbind]=/usr/bin/ntlm_auth
  # An RDP server with NLA (CredSSP), for rdp-ntlm-info (xrdp has none): FreeRDP's shadow server
  [freerdp2-shadow-x11]=/usr/bin/freerdp-shadow-cli
  # Mail daemons for the mail scripts: Postfix (SMTP) and Dovecot's POP3
  [postfix]=/usr/sbin/postfix
  [dovecot-pop3d]=/usr/lib/dovecot/pop3
  # h18, the lwIP host for OS detection: lab.sh compiles tests/lab/lwip-host/lwip_host.c
  [liblwip-dev]=/usr/lib/x86_64-linux-gnu/pkgconfig/lwip.pc
  [gcc]=cc
  [pkgconf]=pkg-config
)
OPTIONAL="masscan zmap nftables"   # benchmark peers and the send-rate sink (bench/): not fatal if missing

installed() {  # $1 = package
  local probe=${PROBE[$1]}
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' || return 1
  case "$probe" in
    /*) [ -e "$probe" ] ;;
    postgresql) ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ;;
    *) command -v "$probe" >/dev/null 2>&1 ;;
  esac
}

missing=()
for pkg in "${!PROBE[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

# Python packages Debian does not carry, in a virtualenv of their own (never in the system's
# Python): aioquic, the lab's QUIC server (tests/lab/quic_server.py); schemathesis, run against
# the API server's OpenAPI document (tests/api/schemathesis.sh); websockets, the API's WebSocket
# client in the lab (tests/api/ws_client.py); moto, the AWS emulator of the cloud tests
# (moto_server and boto3, tests/cloud/moto_setup.py). Pinned; idempotent.
LAB_VENV=${LAB_VENV:-/opt/rustmap-lab/venv}
PY_PACKAGES=(aioquic==1.3.0 schemathesis==4.32.5 websockets==15.0.1 'moto[server]==5.2.6')
venv() {
  if "$LAB_VENV/bin/python" -c 'import aioquic, schemathesis, websockets, moto, boto3' 2>/dev/null; then
    return 0
  fi
  echo "install-deps.sh: installing ${PY_PACKAGES[*]} into $LAB_VENV"
  [ -x "$LAB_VENV/bin/python" ] || /usr/bin/python3 -m venv "$LAB_VENV"
  "$LAB_VENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
  "$LAB_VENV/bin/python" -c 'import aioquic, schemathesis, websockets, moto, boto3'
}
# And the Python bindings' test tools (maturin, pytest, mypy), in a virtualenv of their own.
pyvenv() {
  bash "$(dirname "${BASH_SOURCE[0]}")/../python-venv.sh" "${RUSTMAP_PY_VENV:-/opt/rustmap-lab/pyvenv}"
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps.sh: all lab packages already installed"
  venv
  pyvenv
  exit 0
fi
echo "install-deps.sh: missing: ${missing[*]}"

created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# installed by RustMap tests/lab/install-deps.sh: never start daemons from postinst\nexit 101\n' \
    > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d; return 0; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold --no-install-recommends)

apt-get update -q

required=() optional=()
for pkg in "${missing[@]}"; do
  if [[ " $OPTIONAL " == *" $pkg "* ]]; then optional+=("$pkg"); else required+=("$pkg"); fi
done
for pkg in "${optional[@]}"; do
  if apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [^(]'; then
    required+=("$pkg")
  else
    echo "install-deps.sh: optional package $pkg not available from apt; skipping" >&2
  fi
done

if [ ${#required[@]} -gt 0 ]; then
  apt-get install "${APT_OPTS[@]}" "${required[@]}"
fi

# Debian's postgresql postinst creates a cluster in /var/lib/postgresql, slapd's a
# directory in /var/lib/ldap, xrdp its keys; the lab uses none of them (every daemon runs
# with its own configuration under the lab runtime dir). Nothing was started thanks to
# policy-rc.d: in particular chrony never ran in the root namespace, where it would discipline
# the machine's clock (the lab runs chronyd -x only).

still=()
for pkg in "${required[@]}"; do installed "$pkg" || still+=("$pkg"); done
if [ ${#still[@]} -gt 0 ]; then
  echo "install-deps.sh: still missing after install: ${still[*]}" >&2
  exit 1
fi
venv
pyvenv
echo "install-deps.sh: done"
