"""Receives a pty master over a unix socket (runc's --console-socket
protocol), types a line into it and prints what the terminal showed.

  console_recv.py SOCKET_PATH LINE
"""
import array
import os
import select
import socket
import sys
import time

path, line = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(1)
s.settimeout(20)
c, _ = s.accept()
_, anc, _, _ = c.recvmsg(1, socket.CMSG_LEN(4))
fds = array.array("i")
for _, _, data in anc:
    fds.frombytes(data[:4])
master = fds[0]
os.write(master, (line + "\n").encode())
out = b""
deadline = time.time() + 10
while time.time() < deadline:
    ready, _, _ = select.select([master], [], [], 0.2)
    if not ready:
        continue
    try:
        chunk = os.read(master, 4096)
    except OSError:  # EIO: the slave side is closed, the container exited
        break
    if not chunk:
        break
    out += chunk
print(out.decode(errors="replace").replace("\r", "\\r"))
