// Seedvisor's in-sandbox entry program for Node.js functions (runtimes/node).
//
// The same protocol as runtimes/python: it loads the common modules once,
// answers one "ready" frame, then serves requests on its channel: fd 0
// (requests) and fd 1 (replies). A seed is this program paused while its
// main thread is blocked in read(0); every fork of the seed gets its own
// pipes as fd 0/1, so a fork's first read returns that fork's request.
//
// Frame: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
//
// Request  {"function": NAME, "version": V, "handler": "main.handler",
//           "files": {"main.js": SOURCE, ...}, "event": ANY, "deadline_ms": N}
//          "files" may be left out when the fork's seed already loaded NAME
//          at version V (a level-2 seed); {"load_only": true} loads the code
//          and answers {"loaded": NAME} without calling the handler.
// Reply    {"result": ANY} or {"error": "Type: message", "traceback": STACK}
//
// handler(event, context) may return a value or a promise (awaited).
// console.log in user code goes to stderr: fd 1 carries only frames.
//
// Per-process random state after a sandbox fork. What a JS program can
// re-seed, this program re-seeds when /proc/seedvisor/fork_generation
// changed since the last request; that is little:
//  - Math.random (V8's xorshift128+ per isolate) cannot be re-seeded from
//    JavaScript (V8 takes a seed only at start, --random_seed): every fork
//    of one seed replays the same Math.random sequence.
//  - crypto.randomBytes, randomUUID and getRandomValues draw from OpenSSL's
//    DRBG in process memory (and randomUUID from a buffer Node fills ahead).
//    OpenSSL re-seeds it when getpid() changes, but a sandbox fork keeps the
//    guest's pids, and Node offers no call to re-seed it: every fork of one
//    seed returns the same bytes (test/seedd checks that this is still so).
//  - What does differ per fork: /dev/urandom and getrandom(2), which the
//    sentry re-seeds on every fork. context.randomBytes(n) reads them; use it
//    for anything that must be unique per call.
'use strict';
require('util');
require('events');
require('stream');
require('crypto');
require('url');
require('querystring');
require('zlib');
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const Module = require('module');

const FORK_GENERATION = '/proc/seedvisor/fork_generation';
const MAX_FRAME = 64 << 20;

let lastGeneration = null;
const loaded = new Map();  // function name -> {version, handler}

function forkGeneration() {
  try {
    return fs.readFileSync(FORK_GENERATION, 'latin1').trim();
  } catch (e) {
    return null;
  }
}

function noteForkGeneration() {
  const g = forkGeneration();
  if (g !== lastGeneration) {
    lastGeneration = g;
  }
}

function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function readExact(n) {
  const buf = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    let r;
    try {
      r = fs.readSync(0, buf, got, n - got, null);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EINTR') { sleepMs(1); continue; }
      throw e;
    }
    if (r === 0) return null;
    got += r;
  }
  return buf;
}

function readFrame() {
  const head = readExact(4);
  if (head === null) return null;
  const n = head.readUInt32BE(0);
  if (n > MAX_FRAME) throw new RangeError(`request frame of ${n} bytes is over ${MAX_FRAME}`);
  const body = readExact(n);
  if (body === null) return null;
  return JSON.parse(body.toString('utf8'));
}

function writeFrame(obj) {
  let text;
  try {
    text = JSON.stringify(obj === undefined ? null : obj);
  } catch (e) {
    text = JSON.stringify({error: `TypeError: the handler's result is not JSON: ${e.message}`,
                           traceback: ''});
  }
  const body = Buffer.from(text, 'utf8');
  const data = Buffer.alloc(4 + body.length);
  data.writeUInt32BE(body.length, 0);
  body.copy(data, 4);
  let off = 0;
  while (off < data.length) {
    try {
      off += fs.writeSync(1, data, off, data.length - off);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EINTR') { sleepMs(1); continue; }
      throw e;
    }
  }
}

// CommonJS modules from a function's files map (no filesystem): "main.js" is
// require('./main'); "lib/x.js", "data.json" and "pkg/index.js" resolve as
// Node resolves relative paths. Anything else goes to Node's own require
// (builtins, modules installed on the host).
class FilesLoader {
  constructor(files) {
    this.files = files;
    this.cache = new Map();
  }

  resolve(spec, dir) {
    const base = path.posix.normalize(path.posix.join(dir, spec)).replace(/^\/+/, '');
    for (const p of [base, base + '.js', base + '.json', base + '/index.js']) {
      if (Object.prototype.hasOwnProperty.call(this.files, p)) return p;
    }
    return null;
  }

  requireFrom(dir) {
    const fallback = Module.createRequire('/');
    return (spec) => {
      if (spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('/')) {
        const p = this.resolve(spec, dir);
        if (p === null) {
          const e = new Error(`Cannot find module '${spec}' in the function's files`);
          e.code = 'MODULE_NOT_FOUND';
          throw e;
        }
        return this.load(p);
      }
      return fallback(spec);
    };
  }

  load(p) {
    const have = this.cache.get(p);
    if (have !== undefined) return have.exports;
    const module = {exports: {}, id: p, filename: p};
    this.cache.set(p, module);
    if (p.endsWith('.json')) {
      module.exports = JSON.parse(this.files[p]);
      return module.exports;
    }
    const fn = vm.compileFunction(this.files[p],
                                  ['exports', 'require', 'module', '__filename', '__dirname'],
                                  {filename: p});
    fn.call(module.exports, module.exports, this.requireFrom(path.posix.dirname(p)), module, p,
            path.posix.dirname(p));
    return module.exports;
  }
}

function load(req) {
  const name = req.function;
  const version = req.version;
  const have = loaded.get(name);
  if (have !== undefined && have.version === version) return have.handler;
  if (!req.files) {
    throw new Error(`function '${name}' version ${version} is not loaded and the request has no files`);
  }
  const spec = req.handler || 'main.handler';
  const dot = spec.lastIndexOf('.');
  if (dot <= 0 || dot === spec.length - 1) throw new TypeError(`handler '${spec}' is not MODULE.FUNCTION`);
  const loader = new FilesLoader(req.files);
  const exports = loader.requireFrom('')('./' + spec.slice(0, dot));
  const handler = exports[spec.slice(dot + 1)];
  if (typeof handler !== 'function') {
    throw new TypeError(`handler '${spec}': ${spec.slice(dot + 1)} is not a function exported by ${spec.slice(0, dot)}`);
  }
  loaded.set(name, {version, handler});
  return handler;
}

function makeContext(req) {
  const deadline = req.deadline_ms ? Date.now() + req.deadline_ms : null;
  return {
    functionName: req.function,
    functionVersion: req.version,
    forkGeneration: lastGeneration,
    getRemainingTimeInMillis: () => (deadline === null ? null : Math.max(0, deadline - Date.now())),
    // Bytes from the sandbox's random source, which differs in every fork.
    randomBytes: (n) => {
      const buf = Buffer.alloc(n);
      const fd = fs.openSync('/dev/urandom', 'r');
      try {
        fs.readSync(fd, buf, 0, n, null);
      } finally {
        fs.closeSync(fd);
      }
      return buf;
    },
  };
}

function describe(e) {
  if (e instanceof Error) {
    return {error: `${e.name}: ${e.message}`, traceback: String(e.stack || '')};
  }
  return {error: `Error: a non-Error value was thrown: ${String(e)}`, traceback: ''};
}

async function serveOne(req) {
  noteForkGeneration();
  try {
    const handler = load(req);
    if (req.load_only) return {loaded: req.function};
    const result = await handler(req.event === undefined ? null : req.event, makeContext(req));
    return {result: result === undefined ? null : result};
  } catch (e) {
    return describe(e);
  }
}

async function main() {
  noteForkGeneration();
  writeFrame({ready: true, pid: process.pid});
  for (;;) {
    let req;
    try {
      req = readFrame();
    } catch (e) {
      writeFrame({error: `${e.name}: bad request frame: ${e.message}`, traceback: ''});
      continue;
    }
    if (req === null) return 0;
    writeFrame(await serveOne(req));
  }
}

// User code's console.log must not write into the reply channel.
console.log = console.error;
console.info = console.error;
console.debug = console.error;
process.on('unhandledRejection', () => {});  // a handler's stray promise is not fatal
main().then((code) => process.exit(code), (e) => {
  process.stderr.write(`seedvisor_entry: ${e && e.stack}\n`);
  process.exit(1);
});
