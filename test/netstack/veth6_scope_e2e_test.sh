#!/bin/bash
# sin6_scope_id on a link (issue 11): two network namespaces made here
# (nothing else is touched), joined by a veth whose ends have only their
# link-local IPv6 addresses. One guest script (bind, connect, sendto,
# recvfrom, accept, getsockname, getpeername to and from B's link-local
# address, with, without and with a wrong scope id) runs three times in A:
# natively (what Linux says: the reference), under `seedsc --network=host
# do` (host sockets in A), and under `seedsc --network=sandbox do
# --netns=A` (the sandbox's own stack on A's taken-over eth0; last, as A's
# kernel gives the address up then). Each sandbox run must print what the
# native run printed; addresses and the interface index are printed as
# names (A, B, IF), so the runs compare although A's eth0 has another
# index in the sandbox.
#
#   bazel test //test/netstack:veth6_scope_e2e_test   (or: veth6_scope_e2e_test.sh SEEDSC)
SEEDSC="$(realpath "${1:?usage: veth6_scope_e2e_test.sh SEEDSC}")"
source "$(dirname "$0")/e2e_lib.sh"
NA="svsnsA$$" NB="svsnsB$$"
extra_cleanup() { del_ns_pair "$NA" "$NB"; }
need_tools ip python3
make_ns_pair "$NA" "$NB" 192.168.215.2 192.168.215.1 ||
  { echo "FAIL: cannot make the namespaces and veth"; exit 1; }
# Both link-local addresses past duplicate address detection (about 1 s,
# more at load 20).
for i in $(seq 1 300); do
  [[ -z "$(ip -n "$NA" -6 addr show tentative; ip -n "$NB" -6 addr show tentative)" ]] && break
  sleep 0.1
done
ll_of() { ip -n "$1" -6 addr show dev "$2" scope link | sed -n 's/.*inet6 \(fe80[^/]*\).*/\1/p'; }
LLA="$(ll_of "$NA" eth0)" LLB="$(ll_of "$NB" peer0)"
[[ -n "$LLA" && -n "$LLB" ]] || { echo "FAIL: no link-local addresses (A '$LLA', B '$LLB')"; exit 1; }

# B: on TCP 8090 it answers "hello", or on "back PORT" connects to A's
# PORT (scoped to its peer0) and says "done"; UDP 8091 echoes.
cat > "$T/b.py" <<PY
import socket, threading
IF = socket.if_nametoindex("peer0")
def udp():
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.bind(("::", 8091))
    while True:
        d, src = u.recvfrom(100)
        u.sendto(d, src)
threading.Thread(target=udp, daemon=True).start()
srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("::", 8090))
srv.listen(16)
print("ready", flush=True)
while True:
    c, _ = srv.accept()
    c.settimeout(10)
    try:
        line = c.recv(100).decode()
        if line.startswith("back "):
            b = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            b.settimeout(10)
            b.connect(("$LLA", int(line.split()[1]), 0, IF))
            b.close()
            c.sendall(b"done")
        else:
            c.sendall(b"hello")
    except OSError:
        pass
    c.close()
PY
ip netns exec "$NB" python3 "$T/b.py" >"$T/b.log" 2>&1 &
pids+=($!)
for i in $(seq 1 100); do grep -q ready "$T/b.log" && break; sleep 0.1; done

cat > "$T/guest.py" <<PY
import errno, socket, sys
A, B, IF = "$LLA", "$LLB", socket.if_nametoindex("eth0")
T6 = lambda t=socket.SOCK_STREAM: socket.socket(socket.AF_INET6, t)
def name(a):  # an address as A, B or itself, and its scope as IF or a number
    host = {A: "A", B: "B"}.get(a[0].split("%")[0], a[0])
    scope = "IF" if a[3] == IF and IF else str(a[3])
    return "%s%%%s" % (host, scope)
def check(what, fn):
    try:
        print(what + ":", fn(), flush=True)
    except OSError as e:
        print(what + ":", errno.errorcode.get(e.errno, e.errno), flush=True)
def tcp(scope, bind=None):
    s = T6()
    s.settimeout(10)
    if bind: s.bind(bind)
    s.connect((B, 8090, 0, scope))
    s.sendall(b"hi")
    got = s.recv(10).decode()
    return "%s name %s peer %s" % (got, name(s.getsockname()), name(s.getpeername()))
check("tcp connect scoped", lambda: tcp(IF))
check("tcp connect unscoped", lambda: tcp(0))
check("tcp connect scoped to lo", lambda: tcp(1))
check("tcp bound scoped, connect unscoped", lambda: tcp(0, (A, 0, 0, IF)))
check("tcp bound scoped, connect to lo", lambda: tcp(1, (A, 0, 0, IF)))
def bind(t, scope):
    s = T6(t)
    s.bind((A, 0, 0, scope))
    return name(s.getsockname())
for t, tn in ((socket.SOCK_STREAM, "tcp"), (socket.SOCK_DGRAM, "udp")):
    check(tn + " bind scoped", lambda: bind(t, IF))
    check(tn + " bind unscoped", lambda: bind(t, 0))
    check(tn + " bind scoped to lo", lambda: bind(t, 1))
    check(tn + " bind scoped to no interface", lambda: bind(t, 2147480000))
def udp_sendto(scope):
    u = T6(socket.SOCK_DGRAM)
    u.settimeout(10)
    u.sendto(b"ping", (B, 8091, 0, scope))
    d, src = u.recvfrom(100)
    return "%s from %s name %s" % (d.decode(), name(src), name(u.getsockname()))
check("udp sendto scoped", lambda: udp_sendto(IF))
def udp_connect(scope):
    u = T6(socket.SOCK_DGRAM)
    u.settimeout(10)
    u.connect((B, 8091, 0, scope))
    u.send(b"ping")
    d, src = u.recvfrom(100)
    return "%s from %s name %s peer %s" % (d.decode(), name(src), name(u.getsockname()),
                                           name(u.getpeername()))
check("udp connect scoped", lambda: udp_connect(IF))
check("udp connect unscoped", lambda: udp_connect(0))
def accept():
    srv = T6()
    srv.settimeout(10)
    srv.bind(("::", 0))
    srv.listen(1)
    c = T6()
    c.settimeout(10)
    c.connect((B, 8090, 0, IF))
    c.sendall(b"back %d" % srv.getsockname()[1])
    a, peer = srv.accept()
    done = c.recv(10).decode()
    return "%s peer %s getpeername %s name %s" % (done, name(peer), name(a.getpeername()),
                                                  name(a.getsockname()))
check("accept from B", accept)
PY

run_guest() {  # tag, command...
  local tag="$1"
  shift
  "$@" /usr/bin/python3 "$T/guest.py" >"$T/$tag.out" 2>"$T/$tag.err"
  echo "--- $tag: exit $?"
  cat "$T/$tag.out"
}
run_guest native ip netns exec "$NA"
run_guest host ip netns exec "$NA" "$SEEDSC" --network=host do
run_guest sandbox "$SEEDSC" --network=sandbox do --netns="/run/netns/$NA"

# The reference must show the scopes (else the comparison proves nothing).
check_eq "natively the guest makes 17 checks" 17 "$(grep -c ': ' "$T/native.out")"
check_eq "natively a scoped connect works and shows its scope" \
  "tcp connect scoped: hello name A%IF peer B%IF" "$(grep '^tcp connect scoped:' "$T/native.out")"
for tag in host sandbox; do
  while IFS= read -r want; do
    what="${want%%:*}"
    got="$(grep -F -- "$what:" "$T/$tag.out" | head -1)"
    check_eq "$tag: $what" "$want" "$got"
  done <"$T/native.out"
done
if ((fail)); then
  for tag in native host sandbox; do echo "--- $tag stderr"; cat "$T/$tag.err"; done
fi
e2e_done
