"""seedd --network=sandbox (issue 11): every instance gets a pooled veth of its own.

A function reads its interfaces (SIOCGIFADDR) and connects to its device's host end
(10.203.<slot>.1, in seedd's namespace, where this test listens on that address): only
loopback and the pool's veths are ever used. Checked: the pool address, the host end reached
(and a wildcard listener there not), two
concurrent instances on different devices, a destroyed instance's host end gone and its
packet socket held by no sandbox process (a seed, replica or other fork host-forked while
the seed had its copy kept the device's namespace alive as long as it ran), and each fork's
TCP secrets re-keyed (the SYNs' ISNs and source ports, read off the host ends with a packet
socket, differ between forks). Alone: seedd_network.py SEEDD SEEDSC.
"""
import ctypes
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time

NET = """import fcntl, socket, struct, time
def handler(event, context):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out = {"ifs": [], "addrs": []}
    for _, name in socket.if_nameindex():
        if name == "lo":
            continue
        req = struct.pack("256s", name.encode())
        out["ifs"].append(name)
        out["addrs"].append(socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24]))
    if event.get("port") and out["addrs"] and out["addrs"][0].startswith("10.203."):
        host = out["addrs"][0].rsplit(".", 1)[0] + ".1"
        out["sports"] = []
        for _ in range(2):
            c = socket.create_connection((host, event["port"]), timeout=5)
            out["sports"].append(c.getsockname()[1])
            out["got"] = c.recv(100).decode()
            c.close()
        if event.get("wild"):
            try:
                socket.create_connection((host, event["wild"]), timeout=5).close()
                out["wild"] = "connected"
            except OSError as e:
                out["wild"] = type(e).__name__
        time.sleep(event.get("hold", 0))
    return out
"""


def host_ends():
    """<prefix><slot> -> its MAC: the pool's host ends in this (seedd's) namespace. A slot's next
    device has the same name, and may have the same ifindex (made in a new namespace, then
    moved here), but not the same random MAC."""
    d, out = "/sys/class/net", {}
    for n in os.listdir(d):
        try:
            if n.startswith("svp"):
                out[n] = open(f"{d}/{n}/address").read().strip()
        except OSError:  # gone meanwhile
            pass
    return out


def prefix_of(node):
    """The host end prefix seedd says at start ("host ends svpXXXX<N>")."""
    m = re.search(r"host ends (svp[a-z]+)<N>", node.stderr())
    return m.group(1) if m else None


def own_ends(prefix):
    """{name: MAC} of the host ends <prefix><N>: this seedd's, not those of another test's
    seedd running at the same time."""
    return {n: m for n, m in host_ends().items() if prefix and re.match(re.escape(prefix) + r"\d+$", n)}


def packet_sockets(state, seedd_pid):
    """"pid comm" of every process of seedd's sandboxes (their command lines name `state`; seedd
    itself, which keeps the pool's free devices, left out) that holds an AF_PACKET socket. Only
    an instance gets one, its device, in its Fork: a device given back must live on in no seed,
    replica or other fork (one would keep the device's namespace as long as it runs)."""
    libc = ctypes.CDLL(None, use_errno=True)
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in (seedd_pid, os.getpid()):
            continue
        pid = int(d)
        try:
            if state.encode() not in open(f"/proc/{pid}/cmdline", "rb").read():
                continue
            fds = [int(f) for f in os.listdir(f"/proc/{pid}/fd")
                   if os.readlink(f"/proc/{pid}/fd/{f}").startswith("socket:")]
            pidfd = os.pidfd_open(pid)
        except OSError:  # gone meanwhile
            continue
        try:
            for fd in fds:
                copy = libc.syscall(438, pidfd, fd, 0)  # pidfd_getfd(2)
                if copy < 0:
                    continue
                try:
                    s = socket.socket(fileno=copy)  # its family read with SO_DOMAIN
                except OSError:
                    os.close(copy)
                    continue
                if s.family == socket.AF_PACKET:
                    found.append(f"{pid} {open(f'/proc/{pid}/comm').read().strip()}")
                s.close()
        finally:
            os.close(pidfd)
    return found


class Listener:
    """TCP on each pool slot's host end address 10.203.<slot>.1:port (IP_FREEBIND: before its
    device exists) answering "hi", plus the SYNs to it seen on any interface. A guest reaches
    only a service on its host end's own address, not one on the wildcard (seedd/veth_guard.h):
    `wild` is such a port, which must refuse it."""

    SLOTS = 32

    def __init__(self):
        self.socks, self.port = [], 0
        for slot in range(self.SLOTS):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_FREEBIND", 15), 1)
            s.bind((f"10.203.{slot}.1", self.port))
            s.listen(64)
            self.port = s.getsockname()[1]
            self.socks.append(s)
        self.wild_sock = socket.socket()
        self.wild_sock.bind(("0.0.0.0", 0))
        self.wild_sock.listen(8)
        self.wild = self.wild_sock.getsockname()[1]
        self.sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        self.sniff.settimeout(0.2)
        self.syns, self.peers, self.stop = [], [], False
        for s in self.socks:
            threading.Thread(target=self._accept, args=(s,), daemon=True).start()
        threading.Thread(target=self._capture, daemon=True).start()

    def _accept(self, sock):
        while not self.stop:
            try:
                c, peer = sock.accept()
            except OSError:
                return
            self.peers.append(peer)
            c.sendall(b"hi")
            c.close()

    def _capture(self):
        while not self.stop:
            try:
                frame = self.sniff.recv(2048)
            except (socket.timeout, OSError):
                continue
            ip = frame[14:]
            if len(ip) < 40 or ip[9] != 6:
                continue
            ihl = (ip[0] & 15) * 4
            sport, dport, seq = struct.unpack("!HHI", ip[ihl:ihl + 8])
            flags = ip[ihl + 13]
            if dport == self.port and flags & 0x12 == 0x02:  # a SYN, not a SYN-ACK
                self.syns.append((socket.inet_ntoa(ip[12:16]), sport, seq))

    def close(self):
        self.stop = True
        for s in self.socks + [self.wild_sock]:
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes its accept
            except OSError:
                pass
            s.close()
        self.sniff.close()


def network_checks(tmp, node_cls, check):
    if os.geteuid() != 0:
        check(False, "--network=sandbox needs root (veth pool)")
        return
    os.makedirs(os.path.join(tmp, "net"), exist_ok=True)
    state = os.path.join(tmp, "net", "state")
    from seedd_proc import free_port
    node = node_cls(state, free_port(), "--cgroup-pool=0", "--node=", "--network=sandbox",
                    "--veth-pool=3", "--promote-after=0")
    lis = Listener()
    try:
        # Host ends <prefix><slot>, the prefix seedd's own ("svp" and letters from its state dir).
        prefix = prefix_of(node)
        check(prefix is not None and prefix != "svp",
              f"seedd names its host ends' prefix at start, its own ({prefix})")
        ends = own_ends(prefix)
        check(len(ends) == 3, f"3 pooled devices' host ends at start ({sorted(ends)})")
        node.deploy("net", NET)
        st, _, body = node.invoke("net", {"port": lis.port, "wild": lis.wild})
        ok = st == 200 and isinstance(body, dict)
        addrs = body.get("addrs", []) if ok else []
        check(ok and len(addrs) == 1 and addrs[0].startswith("10.203.") and addrs[0].endswith(".2"),
              f"an instance has one interface with its pool address ({st} {body})")
        check(ok and body.get("got") == "hi", f"it reaches its device's host end ({body})")
        check(ok and body.get("wild") == "ConnectionRefusedError",
              f"but no wildcard service of seedd's namespace there ({body})")
        # Two instances at once (each holds its device 2 s): different devices.
        answers = [None, None]

        def call(i):
            answers[i] = node.invoke("net", {"port": lis.port, "hold": 2})

        ts = [threading.Thread(target=call, args=(i,)) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        got = [a[2].get("addrs") if a and isinstance(a[2], dict) else a for a in answers]
        check(all(a and a[0] == 200 and a[2].get("got") == "hi" for a in answers) and
              got[0] != got[1], f"two concurrent instances get different devices ({got})")
        used = {prefix + a[0].rsplit(".", 2)[1] for a in got + [addrs] if isinstance(a, list) and a}
        gone = lambda: {n for n in used if n in ends and host_ends().get(n) == ends[n]}
        # The pool deletes a given-back device's veth on its thread, at once.
        for _ in range(50):
            if not gone():
                break
            time.sleep(0.1)
        check(len(used) == 3 and not gone(),
              f"the 3 destroyed instances' host ends are gone ({sorted(used)}; "
              f"left: {sorted(gone())})")
        # An instance's sandbox is SIGKILLed without a wait (early destroy):
        # its exit, and the close of its socket, may come after its host end
        # is gone when the host is loaded. What holds one 10 s on is kept.
        held = packet_sockets(state, node.proc.pid)
        for _ in range(100):
            if not held:
                break
            time.sleep(0.1)
            held = packet_sockets(state, node.proc.pid)
        seeds = {s["pid"]: s["id"] for s in json.loads(node.request("GET", "/seeds")[2])}
        held = [f"{h} ({seeds.get(int(h.split()[0]), 'no seed')})" for h in held]
        check(not held, f"no sandbox process holds a packet socket after the calls ({held})")
        # Secrets: each fork's first SYNs (ISN, source port) differ from every other fork's.
        firsts = {}
        for src, sport, seq in lis.syns:
            firsts.setdefault(src, []).append((sport, seq))
        isns = [v[0][1] for v in firsts.values()]
        ports = [tuple(p for p, _ in v[:2]) for v in firsts.values()]
        check(len(firsts) >= 3 and len(set(isns)) == len(isns),
              f"every fork's first ISN differs ({firsts})")
        check(len(set(ports)) == len(ports), f"forks' source port sequences differ ({ports})")
        st, _, m = node.request("GET", "/metrics")
        check(b"seedd_veth_pool_in_use 0" in m, "no device held once the calls are done")
    finally:
        lis.close()
        node.stop()
    time.sleep(0.5)
    left = set(own_ends(prefix))
    check(not left, f"seedd's exit leaves no host end ({sorted(left)})")


if __name__ == "__main__":
    import seedd_e2e  # reads SEEDD SEEDSC from sys.argv
    import sys
    import tempfile
    with tempfile.TemporaryDirectory(prefix="seedd-net.", dir=os.environ.get("TEST_TMPDIR")) as d:
        network_checks(d, seedd_e2e.Node, seedd_e2e.check)
    sys.exit(1 if seedd_e2e.failures else 0)
