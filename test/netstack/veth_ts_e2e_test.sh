#!/bin/bash
# TCP timestamps (RFC 7323) between the sandbox's own stack and the host's
# Linux TCP, over a veth between two network namespaces made here (nothing
# else is touched; 192.168.219.0/24): `seedsc do --network=sandbox
# --netns=A` takes A's interface over, and
#   - a guest client sends 4 MiB to a server in B: both ends' TCP_INFO show
#     timestamps agreed, the bytes arrive intact, and B's kernel dropped
#     none of our segments by PAWS (TcpExtPAWSEstab 0: our TSvals never go
#     back);
#   - with net.ipv4.tcp_timestamps=0 in B, the same transfer works without
#     them (a peer that does not offer the option);
#   - a client in B sends 4 MiB to a guest server (we answer an offer).
# Namespaces (and with them the veth) are removed on every exit.
#
#   bazel test //test/netstack:veth_ts_e2e_test   (or: veth_ts_e2e_test.sh SEEDSC)
SEEDSC="$(realpath "${1:?usage: veth_ts_e2e_test.sh SEEDSC}")"
source "$(dirname "$0")/e2e_lib.sh"
NA="svtsA$$" NB="svtsB$$"
IPA=192.168.219.2 IPB=192.168.219.1
extra_cleanup() { del_ns_pair "$NA" "$NB"; }
need_tools ip python3 nstat
make_ns_pair "$NA" "$NB" "$IPA" "$IPB" ||
  { echo "FAIL: cannot make the namespaces and veth"; exit 1; }

# What both sides run: send 4 MiB of a fixed pattern and half-close, or
# take it and answer "<bytes> <sha256> <TCP_INFO options of this end>".
cat > "$T/peer.py" <<'PY'
import hashlib, socket, sys
DATA = hashlib.sha256(b"seed").digest() * (4 << 15)  # 4 MiB
def opts(s):
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[5]
def send(s):
    s.sendall(DATA)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        b = s.recv(256)
        if not b: break
        reply += b
    want = f"{len(DATA)} {hashlib.sha256(DATA).hexdigest()}"
    return f"reply {reply.decode()} mine {opts(s)} want {want}"
def take(c):
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(1 << 16)
        if not b: break
        h.update(b)
        n += len(b)
    c.sendall(f"{n} {h.hexdigest()} {opts(c)}".encode())
    c.close()
PY
# B's server: two connections from the guest.
cat > "$T/server.py" <<PY
import socket, sys
sys.path.insert(0, "$T")
import peer
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("$IPB", 9000))
l.listen(4)
for _ in range(2):
    peer.take(l.accept()[0])
PY
ip netns exec "$NB" python3 "$T/server.py" >"$T/server.log" 2>&1 &
pids+=($!)

# The guest: round 1 with timestamps in B, round 2 (after $T/go2) without,
# then a server for B's client.
cat > "$T/guest.py" <<PY
import os, socket, sys, time
sys.path.insert(0, "$T")
import peer
l = socket.socket()
l.bind(("0.0.0.0", 9001))
l.listen(1)
for rnd in (1, 2):
    if rnd == 2:
        while not os.path.exists("$T/go2"): time.sleep(0.05)
    for i in range(50):
        try:
            s = socket.create_connection(("$IPB", 9000), timeout=20)
            break
        except OSError:
            time.sleep(0.2)
    print(f"ROUND{rnd}", peer.send(s), flush=True)
    s.close()
print("serving", flush=True)
c = l.accept()[0]
print("GUEST_SERVER", peer.opts(c), flush=True)
peer.take(c)
PY
"$SEEDSC" --network=sandbox do --netns="/run/netns/$NA" /usr/bin/python3 "$T/guest.py" \
  >"$T/guest.log" 2>&1 &
gpid=$!
pids+=($gpid)
wait_for() {
  for i in $(seq 1 300); do grep -q "$1" "$T/guest.log" && return 0; sleep 0.1; done
  return 1
}

# "reply <n> <sha> <their opts> mine <our opts> want <n> <sha>"
check_round() {  # name, line, want TCPI_OPT_TIMESTAMPS (1 or 0)
  read -r _ _ n sha theirs _ mine _ wn wsha <<<"$2"
  check_eq "$1: 4 MiB arrive intact" "$wn $wsha" "$n $sha"
  check_eq "$1: timestamps at the host's end" "$3" "$((theirs & 1))"
  check_eq "$1: timestamps at the guest's end" "$3" "$((mine & 1))"
}
wait_for ROUND1 || bad "round 1 finished"
check_round "guest to B with timestamps" "$(grep ROUND1 "$T/guest.log")" 1
ip netns exec "$NB" sysctl -qw net.ipv4.tcp_timestamps=0
touch "$T/go2"
wait_for ROUND2 || bad "round 2 finished"
check_round "guest to B without timestamps" "$(grep ROUND2 "$T/guest.log")" 0
ip netns exec "$NB" sysctl -qw net.ipv4.tcp_timestamps=1
wait_for serving || bad "guest server up"
line="$(cd "$T" && ip netns exec "$NB" python3 -c "
import socket, peer
s = socket.create_connection(('$IPA', 9001), timeout=20)
print(peer.send(s))" 2>&1)"
check_round "B to the guest's server with timestamps" "B $line" 1
check_eq "B's kernel dropped none of our segments by PAWS" "0" \
  "$(ip netns exec "$NB" nstat -az TcpExtPAWSEstab | awk '/PAWSEstab/ {print $2}')"
wait "$gpid"
rc=$?
if ((rc == 0)); then ok "guest exits 0"; else bad "guest exits 0 (got $rc)"; fi
if ((fail)); then
  echo "--- guest log"; cat "$T/guest.log"; echo "--- server log"; cat "$T/server.log"
fi
e2e_done
