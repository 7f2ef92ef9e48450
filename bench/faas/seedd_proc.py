"""One seedd process for the FaaS benchmarks: start it on a free loopback
port, wait until it listens, talk HTTP to it, stop it.

    node = SeeddProcess(seedd, seedsc, state_dir, flags, err_path)
    status, body = node.request("GET", "/seeds")
    node.stop()   # SIGTERM; SIGKILL if it has not exited within 60 s

A seedd that exits or does not listen in time ends the run with one line
naming its stderr file.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class SeeddProcess:
    """`port` None: a free one; `env`: variables added to this environment."""

    def __init__(self, seedd, seedsc, state, flags=(), err_path=None, listen_timeout_s=120,
                 port=None, env=None):
        self.port = port or free_port()
        self.state = state
        self.err_path = err_path or state + ".err"
        self.err = open(self.err_path, "w+")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([seedd, f"--listen=127.0.0.1:{self.port}", f"--state-dir={state}",
                                      f"--seedsc={seedsc}", *flags], stderr=self.err,
                                     env=dict(os.environ, **env) if env else None)
        deadline = t0 + listen_timeout_s
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"seedd exited ({self.proc.returncode}); {self.err_path}:\n"
                                     + self.stderr()[-2000:])
                if time.perf_counter() > deadline:
                    self.proc.kill()
                    self.proc.wait()
                    raise SystemExit(f"seedd did not listen within {listen_timeout_s} s; {self.err_path}:\n"
                                     + self.stderr()[-2000:])
                time.sleep(0.01)
        self.listen_ms = (time.perf_counter() - t0) * 1e3

    def stderr(self):
        """What seedd wrote to stderr so far."""
        with open(self.err_path) as f:
            return f.read()

    def connection(self, timeout=120):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, conn=None):
        """(status, body bytes); a one-off connection unless `conn` is given."""
        status, _, data = self.request_with_headers(method, path, body, conn)
        return status, data

    def request_with_headers(self, method, path, body=None, conn=None):
        c = conn or self.connection()
        c.request(method, path, body=body)
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, r, data

    def deploy_l2(self, name, source, body, conn):
        """Deploys python function `name` (main.handler in `source`) and calls it with `body` on
        `conn` until a call comes from its level-2 seed (promoted after its 2nd call, used once
        paused); a deploy that fails or a seed that never serves ends the run."""
        deploy = {"runtime": "python", "handler": "main.handler", "files": {"main.py": source}}
        st, data = self.request("PUT", f"/functions/{name}", json.dumps(deploy))
        if st != 201:
            raise SystemExit(f"deploy failed: {st} {data[:200]!r}")
        path = None
        for _ in range(20):
            st, r, data = self.request_with_headers("POST", f"/invoke/{name}", body, conn)
            path = r.getheader("Server-Timing") or ""
            if 'path;desc="L2"' in path:
                return
            time.sleep(0.2)
        raise SystemExit(f"no call came from a level-2 seed: {path}")

    def stop(self, timeout=60):
        """Stops seedd: SIGTERM (it destroys its sandboxes), at most `timeout`
        seconds for it to exit, then SIGKILL; reaped either way. Its exit
        status (-9 after the SIGKILL). Nothing happens to one already gone."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
