#!/usr/bin/python3
"""Seedvisor's in-sandbox entry program for Python functions (runtimes/python).

It imports the common modules once, answers one "ready" frame, then serves
requests on its channel: fd 0 (requests) and fd 1 (replies). A seed is this
program paused while it is blocked reading fd 0; every fork of the seed gets
its own pipes as fd 0/1, so a fork's first read returns that fork's request.

Frame: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.

Request  {"function": NAME, "version": V, "handler": "main.handler",
          "files": {"main.py": SOURCE, ...}, "event": ANY, "deadline_ms": N}
         "files" may be left out when the fork's seed already loaded
         NAME at version V (a level-2 seed); {"load_only": true} loads the
         code and answers {"loaded": NAME} without calling the handler.
Reply    {"result": ANY} or {"error": "Type: message", "traceback": TEXT}

Per-process random state is re-seeded from os.urandom whenever
/proc/seedvisor/fork_generation changed since the last request: two forks
of one seed must never return the same random values. That state is
random's Mersenne Twister and, once the ssl module is loaded, OpenSSL's
DRBG (ssl.RAND_bytes, TLS handshakes and keys): OpenSSL re-seeds itself on
a pid change only, and a sandbox fork keeps the guest's pids. (secrets,
uuid.uuid4 and os.urandom read the sandbox's random source, which the
sentry re-seeds on fork; hash randomization is fixed at start.)

print() in user code goes to stderr: fd 1 carries only frames.
"""
import json, re, decimal, asyncio  # noqa: F401,E401  the common modules a seed holds
import importlib.abc
import importlib.util
import os
import random
import struct
import sys
import time
import traceback

FORK_GENERATION = "/proc/seedvisor/fork_generation"
MAX_FRAME = 64 << 20

_reply_fd = 1
_last_generation = None
_generation_fd = None  # FORK_GENERATION, held open: one pread per request
_loaded = {}  # function name -> (version, handler callable)


def fork_generation():
    # Opened once (the seed's descriptor is every fork's): a request then
    # costs one pread instead of open's path walk and eight more syscalls,
    # each a sentry round trip, right on the call's path.
    global _generation_fd
    try:
        if _generation_fd is None:
            _generation_fd = os.open(FORK_GENERATION, os.O_RDONLY | os.O_CLOEXEC)
        return os.pread(_generation_fd, 32, 0).strip()
    except OSError:
        return None


def reseed_if_forked():
    """Re-seeds random when the sandbox was forked since the last request."""
    global _last_generation
    g = fork_generation()
    if g != _last_generation:
        fresh = os.urandom(64)  # one getrandom for both
        random.seed(fresh[:32])
        ssl = sys.modules.get("_ssl")
        if ssl is not None:
            # Reseeds OpenSSL's primary DRBG; the public and private ones
            # (per thread) reseed from it at their next use.
            ssl.RAND_add(fresh[32:], 32.0)
        _last_generation = g


_inbuf = bytearray()  # read from fd 0, not yet taken by read_exact


def read_exact(n):
    # Reads ahead: a fork's first read returns its whole request frame
    # (seedd wrote it before the fork), header and body in one syscall.
    global _inbuf
    while len(_inbuf) < n:
        chunk = os.read(0, max(1 << 16, n - len(_inbuf)))
        if not chunk:
            return None
        _inbuf += chunk
    out = bytes(_inbuf[:n])
    del _inbuf[:n]
    return out


def read_frame():
    head = read_exact(4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > MAX_FRAME:
        raise ValueError(f"request frame of {n} bytes is over {MAX_FRAME}")
    body = read_exact(n)
    if body is None:
        return None
    return json.loads(body)


def write_frame(obj):
    try:
        data = json.dumps(obj).encode()
    except (TypeError, ValueError) as e:
        data = json.dumps({"error": f"TypeError: the handler's result is not JSON: {e}",
                           "traceback": ""}).encode()
    data = struct.pack(">I", len(data)) + data
    while data:
        data = data[os.write(_reply_fd, data):]


class FilesFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a function's modules from its files map (no filesystem):
    "main.py" is module main, "pkg/__init__.py" package pkg, "pkg/x.py" pkg.x."""

    def __init__(self, files):
        self.sources = {}
        self.packages = set()
        for path, src in files.items():
            if not path.endswith(".py"):
                continue
            parts = path[:-3].split("/")
            if parts[-1] == "__init__":
                parts = parts[:-1]
                self.packages.add(".".join(parts))
            if parts:
                self.sources[".".join(parts)] = (path, src)

    def find_spec(self, name, path=None, target=None):
        if name not in self.sources:
            return None
        return importlib.util.spec_from_loader(name, self, origin=self.sources[name][0],
                                               is_package=name in self.packages)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        path, src = self.sources[module.__name__]
        if module.__name__ in self.packages:
            module.__path__ = []
        exec(compile(src, path, "exec"), module.__dict__)


def load(req):
    """The handler for req's function, importing its code if needed."""
    name, version = req["function"], req.get("version")
    have = _loaded.get(name)
    if have is not None and have[0] == version:
        return have[1]
    files = req.get("files")
    if files is None:
        raise LookupError(f"function {name!r} version {version!r} is not loaded and the request has no files")
    module_name, _, attr = req.get("handler", "main.handler").rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"handler {req.get('handler')!r} is not MODULE.FUNCTION")
    finder = FilesFinder(files)
    for m in list(sys.modules):
        if m.split(".")[0] in {k.split(".")[0] for k in finder.sources}:
            del sys.modules[m]
    sys.meta_path.insert(0, finder)
    module = importlib.import_module(module_name)
    handler = getattr(module, attr)
    _loaded[name] = (version, handler)
    return handler


class Context:
    """The handler's second argument."""

    def __init__(self, req):
        self.function_name = req["function"]
        self.function_version = req.get("version")
        self.deadline = time.monotonic() + req["deadline_ms"] / 1000 if req.get("deadline_ms") else None

    def get_remaining_time_in_millis(self):
        return None if self.deadline is None else max(0, int((self.deadline - time.monotonic()) * 1000))


def serve_one(req):
    reseed_if_forked()
    try:
        handler = load(req)
        if req.get("load_only"):
            return {"loaded": req["function"]}
        return {"result": handler(req.get("event"), Context(req))}
    except BaseException as e:  # noqa: B902  sys.exit() in a handler is an error too
        return {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}


def main():
    global _reply_fd
    _reply_fd = 1
    sys.stdout = sys.stderr
    reseed_if_forked()
    write_frame({"ready": True, "pid": os.getpid()})
    while True:
        try:
            req = read_frame()
        except ValueError as e:
            write_frame({"error": f"ValueError: bad request frame: {e}", "traceback": ""})
            continue
        if req is None:
            return 0
        write_frame(serve_one(req))


if __name__ == "__main__":
    sys.exit(main())
