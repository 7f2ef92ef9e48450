#!/bin/bash
# `seedsc --network=sandbox do` without --netns (issue 11, milestone 2):
# seedsc makes a network namespace and a veth pair itself (host end
# svd<pid> with .1 of the subnet, the sandbox's end taken over by its own
# stack) and everything is gone when the sandbox ends:
#   - a guest HTTP server is reached from the host over the host end;
#   - a guest client reaches a server on the host end's address;
#   - the guest has no route anywhere else (ENETUNREACH);
#   - the host end is gone after a normal exit, after the guest is
#     SIGKILLed, and after seedsc itself is SIGKILLed.
# Uses 192.168.214.0/24 (root; ip, curl, python3).
#
#   bazel test //test/netstack:do_veth_test   (or: do_veth_test.sh SEEDSC)
SEEDSC="$(realpath "${1:?usage: do_veth_test.sh SEEDSC}")"
source "$(dirname "$0")/e2e_lib.sh"
IPG=192.168.214.2 IPH=192.168.214.1
need_tools ip curl python3
# The host end of seedsc pid $1 is gone within 10 s (namespace teardown is
# asynchronous in the kernel).
gone() {
  for i in $(seq 1 100); do
    ip link show "svd$1" >/dev/null 2>&1 || return 0
    sleep 0.1
  done
  return 1
}

mkdir -p "$T/h" "$T/g"
echo "hello from the host" > "$T/h/h.txt"
echo "hello from the guest" > "$T/g/g.txt"
cat > "$T/guest.py" <<PY
import socket, urllib.request, http.server, os, sys, time, errno
os.chdir("$T/g")
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
srv = http.server.HTTPServer(("0.0.0.0", 8080), H)
print("serving", flush=True)
srv.handle_request()
for i in range(100):
    try:
        print("client:", urllib.request.urlopen("http://$IPH:8082/h.txt", timeout=5).read().decode().strip(), flush=True)
        break
    except OSError as e:
        err = e
        time.sleep(0.1)
else:
    print("client failed:", err, flush=True)
s = socket.socket()
try:
    s.connect(("192.0.2.1", 80))
    print("outside: connected", flush=True)
except OSError as e:
    print("outside:", errno.errorcode.get(e.errno, e.errno), flush=True)
if len(sys.argv) > 1 and sys.argv[1] == "kill":
    os.kill(os.getpid(), 9)
PY

# 1. A normal run.
"$SEEDSC" --network=sandbox do --ip="$IPG/24" /usr/bin/python3 "$T/guest.py" >"$T/guest.log" 2>&1 &
gpid=$!
pids+=($gpid)
for i in $(seq 1 150); do grep -q serving "$T/guest.log" && break; sleep 0.2; done
if ip -4 addr show dev "svd$gpid" 2>/dev/null | grep -q "inet $IPH/24"; then
  ok "host end svd$gpid has $IPH/24"; else bad "host end svd$gpid has $IPH/24"; ip addr; fi
if ip route show dev "svd$gpid" 2>/dev/null | grep -q "^192.168.214.0/24"; then
  ok "the host routes 192.168.214.0/24 to the host end"; else bad "host route"; fi
got="$(curl -s --max-time 10 "http://$IPG:8080/g.txt")"
if [[ "$got" == "hello from the guest" ]]; then ok "curl from the host reaches the guest's server"; else
  bad "curl from the host reaches the guest's server"; echo "  got: $got"; fi
(cd "$T/h" && exec python3 -m http.server 8082 --bind "$IPH") >"$T/host.log" 2>&1 &
pids+=($!)
wait "$gpid"
rc=$?
if ((rc == 0)); then ok "guest exits 0"; else bad "guest exits 0 (got $rc)"; fi
if grep -q "client: hello from the host" "$T/guest.log"; then ok "guest client reaches the host end"; else
  bad "guest client reaches the host end"; fi
if grep -q "outside: ENETUNREACH" "$T/guest.log"; then ok "nothing but the subnet is routed"; else
  bad "nothing but the subnet is routed"; fi
if gone "$gpid"; then ok "host end gone after exit"; else bad "host end gone after exit"; fi
if ((fail)); then echo "--- guest log"; cat "$T/guest.log"; fi

# 2. The guest kills itself with SIGKILL. It runs under a shell: the
# sandbox's init (pid 1) ignores a SIGKILL it sends itself, as a pid
# namespace's init does on Linux; the shell exits 137 for its child.
"$SEEDSC" --network=sandbox do --ip="$IPG/24" /bin/sh -c '/usr/bin/python3 "$1" kill; exit $?' sh "$T/guest.py" \
  >"$T/guest2.log" 2>&1 &
gpid=$!
pids+=($gpid)
for i in $(seq 1 150); do grep -q serving "$T/guest2.log" && break; sleep 0.2; done
curl -s --max-time 10 "http://$IPG:8080/g.txt" >/dev/null
wait "$gpid"
rc=$?
if ((rc == 137)); then ok "SIGKILLed guest: seedsc exits 137"; else bad "SIGKILLed guest: exit $rc"; fi
if gone "$gpid"; then ok "host end gone after the guest's SIGKILL"; else bad "host end gone after the guest's SIGKILL"; fi

# 3. seedsc itself is SIGKILLed while the guest serves.
"$SEEDSC" --network=sandbox do --ip="$IPG/24" /usr/bin/python3 "$T/guest.py" >"$T/guest3.log" 2>&1 &
gpid=$!
pids+=($gpid)
for i in $(seq 1 150); do grep -q serving "$T/guest3.log" && break; sleep 0.2; done
if ip link show "svd$gpid" >/dev/null 2>&1; then ok "host end svd$gpid is there"; else bad "host end svd$gpid is there"; fi
kill -9 "$gpid"
wait "$gpid" 2>/dev/null
if gone "$gpid"; then ok "host end gone after seedsc's SIGKILL"; else bad "host end gone after seedsc's SIGKILL"; fi
if ip -o link | grep -q "svd$gpid"; then bad "ip link lists nothing of ours"; else ok "ip link lists nothing of ours"; fi

e2e_done
