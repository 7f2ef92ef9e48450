#!/bin/bash
# `seedsc --network=sandbox run` takes over the container's network
# namespace (issue 11, milestone 4 step 3), as runsc does: the spec names
# a namespace (made here: a veth to a second namespace B, 192.168.215.0/24,
# a default route) and the same bundle runs under runc (the host kernel
# serves the namespace) and under seedsc (the sandbox's own stack serves
# it, the address leaves the namespace's kernel). Compared: what busybox
# `ip addr`, `ip route` and a wget to B's server print. Then a server in
# the seedsc container is reached from B. Namespaces are made anew for each
# run and removed on exit.
#
#   bazel test //test/oci:network_sandbox_test   (or: network_sandbox_test.sh SEEDSC)
SEEDSC="$(realpath "${1:?usage: network_sandbox_test.sh SEEDSC}")"
source "${2:?usage: network_sandbox_test.sh SEEDSC E2E_LIB}"
RUNC="$(command -v runc || true)"
BUSYBOX=/bin/busybox
NA="svociA$$" NB="svociB$$"
IPA=192.168.215.2 IPB=192.168.215.1
extra_cleanup() {
  "$SEEDSC" --root "$T/s" delete --force srv >/dev/null 2>&1
  del_ns_pair "$NA" "$NB"
}
need_tools ip curl python3
[[ -x "$BUSYBOX" ]] || { echo "FAIL: $BUSYBOX (busybox-static) is missing"; exit 1; }
[[ -n "$RUNC" ]] || { echo "FAIL: runc is not installed"; exit 1; }

# Fresh namespaces: A holds the container's eth0, B the peer with a server.
setup_ns() {
  del_ns_pair "$NA" "$NB"
  make_ns_pair "$NA" "$NB" "$IPA" "$IPB" || return 1
  (cd "$T/b" && exec ip netns exec "$NB" python3 -u -m http.server 8081 --bind "$IPB") \
    >"$T/bserver.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q "Serving" "$T/bserver.log" && return 0; sleep 0.05; done
  return 1
}

ROOTFS="$T/rootfs"
mkdir -p "$ROOTFS"/{bin,tmp,etc,proc,sys,dev,www} "$T/b"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for a in sh echo cat ip wget httpd sleep; do ln -s busybox "$ROOTFS/bin/$a"; done
echo "hello from B" > "$T/b/b.txt"
echo "hello from the container" > "$ROOTFS/www/c.txt"
# bundle DIR ARGS-JSON: `seedsc spec` with the network namespace at A's path.
bundle() {
  mkdir -p "$1" && rm -f "$1/config.json"
  "$SEEDSC" spec --bundle "$1" || return 1
  python3 - "$1/config.json" "$ROOTFS" "$2" "/run/netns/$NA" <<'PY'
import json, sys
path, rootfs, args, netns = sys.argv[1:5]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = json.loads(args)
c["root"]["path"] = rootfs
for ns in c["linux"]["namespaces"]:
    if ns["type"] == "network":
        ns["path"] = netns
json.dump(c, open(path, "w"), indent=1)
PY
}

VIEW='["sh", "-c", "ip -4 addr show dev eth0 | grep inet; ip route; wget -q -O - http://'"$IPB"':8081/b.txt"]'
bundle "$T/view" "$VIEW" || { echo "FAIL: bundle"; exit 1; }
setup_ns || { echo "FAIL: namespaces for runc"; exit 1; }
"$RUNC" --root "$T/r" run --bundle "$T/view" rview >"$T/r.out" 2>"$T/r.err" </dev/null
rrc=$?
setup_ns || { echo "FAIL: namespaces for seedsc"; exit 1; }
"$SEEDSC" --root "$T/s" --network=sandbox run --bundle "$T/view" sview >"$T/s.out" 2>"$T/s.err" </dev/null
src=$?
check_eq "exit status as runc's" "$rrc" "$src"
check_eq "ip addr, ip route and a client to B print as under runc" "$(cat "$T/r.out")" "$(cat "$T/s.out")"
grep -q "hello from B" "$T/r.out" && ok "runc's run reached B (the comparison means something)" ||
  bad "runc's run reached B"
if ip -n "$NA" -4 addr show dev eth0 | grep -q "$IPA"; then
  bad "the namespace's kernel gave $IPA up"; else ok "the namespace's kernel gave $IPA up"; fi
[[ -s "$T/s.err" ]] && { echo "--- seedsc stderr"; cat "$T/s.err"; }

# A server in the container, reached from B.
setup_ns || { echo "FAIL: namespaces for the server"; exit 1; }
bundle "$T/srv" '["httpd", "-f", "-p", "8080", "-h", "/www"]' || { echo "FAIL: bundle"; exit 1; }
"$SEEDSC" --root "$T/s" --network=sandbox run --bundle "$T/srv" srv >"$T/srv.out" 2>&1 </dev/null &
pids+=($!)
got=""
for _ in $(seq 100); do
  got="$(ip netns exec "$NB" curl -s --max-time 2 "http://$IPA:8080/c.txt")" && [[ -n "$got" ]] && break
  sleep 0.1
done
check_eq "curl from B reaches the container's server" "hello from the container" "$got"
"$SEEDSC" --root "$T/s" kill srv KILL >/dev/null 2>&1

e2e_done
