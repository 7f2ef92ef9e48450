#!/bin/bash
# A sandbox fork's own network device (issue 11, AFaaS's pooled veth): a
# seed runs --network=sandbox in namespace S with a busybox httpd
# listening on 0.0.0.0:8080, and is paused. Two forks are made with
# `seedsc fork --netns`, each into a namespace of its own (F1, F2: a veth
# to B1, B2, made here as a pool would make them). Each fork answers on its
# own address from its own peer namespace; the seed's address stays dark
# (no fork took the seed's device); a fork without --netns says it keeps
# only loopback; a bad --netns fails with one line and leaves nothing; a
# stranger on the host gets no fork's device on the way to it. A
# fork's device is the fork's alone from its host fork on: F5 (into N3)
# stalls before its report while f6 is forked, and once F5's fork has
# failed no process holds N3's packet socket (the seed kept its copy until
# F5's Fork returned, so f6 inherited it and kept N3 as long as it ran).
#
#   bazel test //test/oci:fork_netns_test   (or: fork_netns_test.sh SEEDSC E2E_LIB)
SEEDSC="$(realpath "${1:?usage: fork_netns_test.sh SEEDSC E2E_LIB}")"
source "${2:?usage: fork_netns_test.sh SEEDSC E2E_LIB}"
BUSYBOX=/bin/busybox
NS="svfS$$" NSB="svfSB$$" N1="svf1$$" N1B="svf1B$$" N2="svf2$$" N2B="svf2B$$"
N3="svf3$$" N3B="svf3B$$" N4="svf4$$" N4B="svf4B$$"
IPS=192.168.216.2 IPSB=192.168.216.1
IP1=192.168.217.2 IP1B=192.168.217.1
IP2=192.168.218.2 IP2B=192.168.218.1
IP3=192.168.219.2 IP3B=192.168.219.1
IP4=192.168.220.2 IP4B=192.168.220.1
S=("$SEEDSC" --root "$T/s" --network=sandbox)
extra_cleanup() {
  for c in f1 f2 f3 f5 f6 f7 seed; do "${S[@]}" delete --force "$c" >/dev/null 2>&1; done
  del_ns_pair "$NS" "$NSB"; del_ns_pair "$N1" "$N1B"; del_ns_pair "$N2" "$N2B"
  del_ns_pair "$N3" "$N3B"; del_ns_pair "$N4" "$N4B"
}
need_tools ip curl python3
[[ -x "$BUSYBOX" ]] || { echo "FAIL: $BUSYBOX (busybox-static) is missing"; exit 1; }
make_ns_pair "$NS" "$NSB" "$IPS" "$IPSB" && make_ns_pair "$N1" "$N1B" "$IP1" "$IP1B" &&
  make_ns_pair "$N2" "$N2B" "$IP2" "$IP2B" && make_ns_pair "$N3" "$N3B" "$IP3" "$IP3B" &&
  make_ns_pair "$N4" "$N4B" "$IP4" "$IP4B" ||
  { echo "FAIL: cannot make the namespaces"; exit 1; }

ROOTFS="$T/rootfs"
mkdir -p "$ROOTFS"/{bin,tmp,etc,proc,sys,dev,www}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for a in sh httpd; do ln -s busybox "$ROOTFS/bin/$a"; done
echo "hello from the seed's server" > "$ROOTFS/www/c.txt"
mkdir -p "$T/b" && "$SEEDSC" spec --bundle "$T/b" || { echo "FAIL: spec"; exit 1; }
python3 - "$T/b/config.json" "$ROOTFS" "/run/netns/$NS" <<'PY'
import json, sys
path, rootfs, netns = sys.argv[1:4]
c = json.load(open(path))
c["process"]["terminal"] = False
c["process"]["args"] = ["httpd", "-f", "-p", "8080", "-h", "/www"]
c["root"]["path"] = rootfs
for ns in c["linux"]["namespaces"]:
    if ns["type"] == "network":
        ns["path"] = netns
json.dump(c, open(path, "w"), indent=1)
PY
"${S[@]}" create --bundle "$T/b" seed </dev/null >"$T/seed.out" 2>"$T/seed.err" || {
  bad "create the seed"; cat "$T/seed.err"; exit 1; }
"${S[@]}" start seed || { bad "start the seed"; exit 1; }
fetch() {  # NAMESPACE IP: what the server at IP:8080 answers from NAMESPACE ("" if nothing)
  ip netns exec "$1" curl -s --max-time "${3:-2}" "http://$2:8080/c.txt"
}
got=""
for _ in $(seq 100); do got="$(fetch "$NSB" "$IPS")" && [[ -n "$got" ]] && break; sleep 0.1; done
check_eq "the seed serves on its address" "hello from the seed's server" "$got"
"${S[@]}" pause seed || { bad "pause the seed"; exit 1; }

"${S[@]}" fork --netns "/run/netns/$N1" seed f1 </dev/null >"$T/f1.out" 2>"$T/f1.err"
check_eq "fork --netns F1 exits 0" "0" "$?"
"${S[@]}" fork --netns "/run/netns/$N2" seed f2 </dev/null >"$T/f2.out" 2>"$T/f2.err"
check_eq "fork --netns F2 exits 0" "0" "$?"
check_eq "fork 1 answers on its own address" "hello from the seed's server" "$(fetch "$N1B" "$IP1" 5)"
check_eq "fork 2 answers on its own address" "hello from the seed's server" "$(fetch "$N2B" "$IP2" 5)"
check_eq "fork 1 again (both run side by side)" "hello from the seed's server" "$(fetch "$N1B" "$IP1")"
if ip -n "$N1" -4 addr show dev eth0 | grep -q "$IP1"; then
  bad "F1's kernel gave $IP1 up to the fork"; else ok "F1's kernel gave $IP1 up to the fork"; fi
check_eq "the paused seed's address stays dark (no fork took its device)" "" "$(fetch "$NSB" "$IPS" 1)"

"${S[@]}" fork seed f3 </dev/null >"$T/f3.out" 2>"$T/f3.err"
check_eq "fork without --netns exits 0" "0" "$?"
if grep -q "only loopback" "$T/f3.err"; then ok "a fork without --netns says it keeps only loopback"; else
  bad "a fork without --netns says it keeps only loopback"; fi
packet_holders() {  # NAMESPACE: the pids holding a packet socket of NAMESPACE, one a line
  local inodes
  inodes="$(ip netns exec "$1" awk 'NR > 1 {printf "%s%s", sep, $9; sep = "|"}' /proc/net/packet)"
  [[ -n "$inodes" ]] || return 0
  # One process reads every fd link: an `ls` per host process took 15-47 s
  # a scan at load 35, longer than F5's stall.
  python3 - "$inodes" <<'PY'
import os, sys
want = {f"socket:[{i}]" for i in sys.argv[1].split("|")}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        continue
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in want:
                print(pid)
                break
        except OSError:
            pass
PY
  return 0
}
json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
seed_pid="$("${S[@]}" state seed | json_field pid)"
# F5 stays in flight 20 s (was 8): finding its sentry (a scan of every
# host process's fds, one per 0.1 s until found) and forking f6 must fit
# in it at any load; the seconds they took are printed.
f5_began=$SECONDS
SEEDSC_TEST_FORK_STALL=20000 "${S[@]}" fork --netns "/run/netns/$N3" seed f5 </dev/null \
  >"$T/f5.out" 2>"$T/f5.err" &
stalled=$!
child=""  # F5's forked sentry: a holder that is neither its client nor the seed
for _ in $(seq 100); do
  child="$(packet_holders "$N3" | grep -vxE "$stalled|$seed_pid" | head -1)"
  [[ -n "$child" ]] && break
  sleep 0.1
done
what="F5's forked sentry holds its device"
[[ -n "$child" ]] && ok "$what" || bad "$what"
f5_found=$((SECONDS - f5_began))
"${S[@]}" fork seed f6 </dev/null >"$T/f6.out" 2>"$T/f6.err"
check_eq "f6, forked while F5's fork is in flight, exits 0" "0" "$?"
echo "   (F5's sentry found after ${f5_found} s, f6 made after $((SECONDS - f5_began)) s of F5's 20)"
if kill -0 "$stalled" 2>/dev/null; then ok "F5's fork was in flight when f6 was made"; else
  bad "F5's fork was in flight when f6 was made (SEEDSC_TEST_FORK_STALL too short?)"; fi
wait "$stalled"
rc=$?
((rc != 0)) && ok "the stalled F5 fails" || bad "the stalled F5 fails (rc $rc)"
held=""
for _ in $(seq 50); do
  held="$(packet_holders "$N3" | tr '\n' ' ')"
  [[ -z "$held" ]] && break
  sleep 0.1
done
check_eq "then no process holds N3's packet socket (f6 runs on)" "" "$held"
check_eq "f6 runs on" "running" "$("${S[@]}" state f6 | json_field status)"

# A stranger (another sandbox's sentry, any local process) connects to
# every unix socket that appears in F7's state dir, where the device's
# packet socket once waited for the first to connect, and keeps what it
# is sent: nothing may come, and F7 still gets its device. The packet
# socket goes with the Fork request itself (sentry/control/net_device.h).
# The stranger stops the seed's sentry for 2 s as soon as that dir is made
# (before seedsc fork takes the device over and calls the seed), so the
# race is its to win (the old handover served whoever connected first).
python3 - "$T/s/f7" "$seed_pid" "$T/stranger.ready" >"$T/stranger.out" 2>&1 <<'PY' &
import os, signal, socket, stat, sys, time
watch, seed, done = sys.argv[1], int(sys.argv[2]), set()
open(sys.argv[3], "w").close()
def scan():
    try:
        entries = list(os.scandir(watch))
    except OSError:
        return
    for e in entries:
        try:
            if e.path in done or not stat.S_ISSOCK(os.lstat(e.path).st_mode):
                continue
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1)
            s.connect(e.path)
        except OSError:
            continue  # not listening yet: again
        done.add(e.path)
        try:
            _, fds, _, _ = socket.recv_fds(s, 256, 4)
        except OSError:
            fds = []
        if fds:
            print("got an fd from", e.path, flush=True)
        s.close()
end = time.time() + 30
while not os.path.isdir(watch) and time.time() < end:
    pass
os.kill(seed, signal.SIGSTOP)
try:
    stop_end = time.time() + 2
    while time.time() < stop_end:
        scan()
finally:
    os.kill(seed, signal.SIGCONT)
while time.time() < end:
    scan()
PY
stranger=$!
for _ in $(seq 100); do [[ -e "$T/stranger.ready" ]] && break; sleep 0.05; done
timeout 30 "${S[@]}" fork --netns "/run/netns/$N4" seed f7 </dev/null >"$T/f7.out" 2>"$T/f7.err"
check_eq "fork --netns F7 exits 0" "0" "$?"
kill "$stranger" 2>/dev/null; wait "$stranger" 2>/dev/null
kill -CONT "$seed_pid" 2>/dev/null
check_eq "a stranger watching F7's state dir got no fd" "" "$(cat "$T/stranger.out")"
check_eq "fork 7 answers on its own address" "hello from the seed's server" "$(fetch "$N4B" "$IP4" 5)"
"${S[@]}" fork --netns /run/netns/no-such-ns$$ seed f4 </dev/null >"$T/f4.out" 2>"$T/f4.err"
rc=$?
if ((rc != 0)) && [[ "$(wc -l <"$T/f4.err")" == 1 ]] && grep -q -- "--netns /run/netns/no-such-ns$$" "$T/f4.err"; then
  ok "a bad --netns fails with one line naming it"; else bad "a bad --netns fails with one line naming it (rc $rc)"; cat "$T/f4.err"; fi
if "${S[@]}" state f4 >/dev/null 2>&1; then bad "a failed fork leaves no container"; else ok "a failed fork leaves no container"; fi
check_eq "the seed still serves after resume" "hello from the seed's server" "$("${S[@]}" resume seed; fetch "$NSB" "$IPS" 5)"
for f in f1 f2 f3 f5 f6 f7; do [[ -s "$T/$f.err" ]] && { echo "--- $f stderr"; cat "$T/$f.err"; }; done
e2e_done
