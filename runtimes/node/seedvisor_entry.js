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
// Per-process random state after a sandbox fork. Every fork of one seed
// starts with the seed's memory, so whatever random state the node process
// holds repeats in all of them unless it is re-seeded; the sentry re-seeds
// only what it owns (getrandom(2), /dev/urandom, netstack secrets) and says
// that a fork happened (/proc/seedvisor/fork_generation). This program
// re-seeds the rest it can reach, at the first request after the generation
// changed (ForkRandom below):
//  - Math.random: V8's xorshift128+ state cannot be re-seeded from
//    JavaScript (V8 seeds it at isolate start only, --random_seed), so
//    Math.random is replaced by xoshiro128** seeded from /dev/urandom after
//    each fork (53-bit doubles in [0, 1), like V8's).
//  - crypto.randomInt keeps a buffer of random bytes in JavaScript: after a
//    fork it draws from randomBytes instead.
//  - crypto.randomBytes, randomFill, randomFillSync, getRandomValues
//    (crypto and webcrypto) and randomUUID draw from OpenSSL's DRBG in
//    process memory, which re-seeds on a getpid() change only (a sandbox
//    fork keeps the guest's pids) and which Node's API cannot re-seed: their
//    bytes are XORed with a ChaCha20 keystream under a key drawn from
//    /dev/urandom after each fork (unique per fork, and no weaker than
//    either source); randomUUID is built from those bytes.
//  - OpenSSL's DRBG itself (key generation, randomPrime, generatePrime,
//    TLS, and the calls above underneath): reseeded through a tiny Node-API
//    addon (openssl_reseed.c: RAND_poll), which seedd embeds in this
//    program (OPENSSL_RESEED_ADDON below, base64) and which the seed loads
//    once at start from a temporary file. If it cannot load, the seed says
//    so on stderr and those calls repeat across forks of one seed.
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
// The OpenSSL re-seed addon as base64; seedd's build fills it in (empty when
// this file runs as it is in the source tree).
const OPENSSL_RESEED_ADDON = '';

// The random state this program re-seeds after each sandbox fork (see the
// header). Until the first re-seed (the seed itself, or a process that was
// never forked) every call behaves as Node's own.
const ForkRandom = (() => {
  const crypto = require('crypto');
  let keystream = null;          // ChaCha20 under this fork's key
  const state = new Uint32Array(4);  // Math.random's xoshiro128** state

  function urandom(n) {
    const buf = Buffer.alloc(n);
    const fd = fs.openSync('/dev/urandom', 'r');
    try {
      for (let got = 0; got < n;) got += fs.readSync(fd, buf, got, n - got, null);
    } finally {
      fs.closeSync(fd);
    }
    return buf;
  }

  const rotl = (x, k) => (x << k) | (x >>> (32 - k));
  function next32() {
    const result = Math.imul(rotl(Math.imul(state[1], 5), 7), 9) >>> 0;
    const t = state[1] << 9;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotl(state[3], 11);
    return result;
  }

  // XORs bytes [offset, offset + length) of `view` (an ArrayBuffer or a
  // view of one) with this fork's keystream.
  function mix(view, offset = 0, length = undefined) {
    if (keystream === null) return;
    const bytes = view instanceof ArrayBuffer || view instanceof SharedArrayBuffer
      ? new Uint8Array(view)
      : new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
    const end = length === undefined ? bytes.length : Math.min(bytes.length, offset + length);
    if (end <= offset) return;
    const ks = keystream.update(Buffer.alloc(end - offset));
    for (let i = offset; i < end; i++) bytes[i] ^= ks[i - offset];
  }

  // The byte range randomFill(Sync)'s (offset, size) arguments name, which
  // count elements of a typed array (Node's assertOffset/assertSize).
  function fillRange(buf, offset, size) {
    const el = buf.BYTES_PER_ELEMENT || 1;
    const off = (offset === undefined ? 0 : offset) * el;
    return [off, size === undefined ? undefined : size * el];
  }

  function install() {
    const origRandom = Math.random;
    Math.random = function random() {
      if (keystream === null) return origRandom();
      return ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
    };
    const origBytes = crypto.randomBytes;
    crypto.randomBytes = function randomBytes(size, callback) {
      if (typeof callback === 'function') {
        return origBytes(size, (err, buf) => {
          if (!err) mix(buf);
          callback(err, buf);
        });
      }
      const buf = origBytes(size);
      mix(buf);
      return buf;
    };
    const origFillSync = crypto.randomFillSync;
    crypto.randomFillSync = function randomFillSync(buf, offset, size) {
      const r = origFillSync(buf, offset, size);
      mix(buf, ...fillRange(buf, offset, size));
      return r;
    };
    const origFill = crypto.randomFill;
    crypto.randomFill = function randomFill(buf, ...rest) {
      const callback = rest.pop();
      if (typeof callback !== 'function') return origFill(buf, ...rest, callback);
      const [offset, size] = rest;
      return origFill(buf, ...rest, (err, filled) => {
        if (!err) mix(filled, ...fillRange(filled, offset, size));
        callback(err, filled);
      });
    };
    const web = crypto.webcrypto;
    const origGetRandomValues = web.getRandomValues;
    const getRandomValues = function getRandomValues(array) {
      const r = origGetRandomValues.call(web, array);
      mix(array);
      return r;
    };
    web.getRandomValues = getRandomValues;
    crypto.getRandomValues = getRandomValues;
    // Node keeps a buffer of random bytes for randomInt in JavaScript, so a
    // fork of a seed that ever called it would repeat the buffer's values:
    // after a fork, randomInt draws from randomBytes instead (the same
    // rejection sampling over 48-bit values). Arguments Node refuses go to
    // Node's own randomInt, which throws its own errors before drawing.
    const origRandomInt = crypto.randomInt;
    crypto.randomInt = function randomInt(min, max, callback) {
      if (keystream === null) return origRandomInt.apply(this, arguments);
      let lo = min;
      let hi = max;
      let cb = callback;
      if (hi === undefined || typeof hi === 'function') {
        cb = hi;
        hi = lo;
        lo = 0;
      }
      const kRange = 2 ** 48;
      if ((cb !== undefined && typeof cb !== 'function') || !Number.isSafeInteger(lo) ||
          !Number.isSafeInteger(hi) || hi <= lo || hi - lo >= kRange) {
        return origRandomInt.apply(this, arguments);
      }
      const range = hi - lo;
      const limit = kRange - (kRange % range);
      let x;
      do {
        x = crypto.randomBytes(6).readUIntBE(0, 6);
      } while (x >= limit);
      const n = lo + (x % range);
      if (cb === undefined) return n;
      process.nextTick(cb, undefined, n);  // as Node passes it
      return undefined;
    };
    const origUUID = crypto.randomUUID;
    crypto.randomUUID = function randomUUID(options) {
      if (keystream === null) return origUUID(options);
      const b = crypto.randomBytes(16);
      b[6] = (b[6] & 0x0f) | 0x40;  // version 4
      b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
      const h = b.toString('hex');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    };
  }

  // After a fork: new keys from the sandbox's random source, which the
  // sentry re-seeded.
  function reseed() {
    if (opensslReseed !== null && !opensslReseed()) {
      process.stderr.write('seedvisor: OpenSSL did not reseed after a sandbox fork\n');
    }
    const k = urandom(64);
    keystream = crypto.createCipheriv('chacha20', k.subarray(0, 32), k.subarray(32, 48));
    for (let i = 0; i < 4; i++) state[i] = k.readUInt32LE(48 + 4 * i);
    if ((state[0] | state[1] | state[2] | state[3]) === 0) state[0] = 1;  // never all zero
  }

  // Loads the addon (see the header); null without one.
  function loadOpensslReseed() {
    if (OPENSSL_RESEED_ADDON === '') return null;
    const os = require('os');
    const bytes = Buffer.from(OPENSSL_RESEED_ADDON, 'base64');
    const errors = [];
    for (const dir of [os.tmpdir(), '/dev/shm', '/tmp']) {
      const file = path.join(dir, `.seedvisor-openssl-reseed-${process.pid}.node`);
      try {
        fs.writeFileSync(file, bytes, {mode: 0o500});
        try {
          const m = {exports: {}};
          process.dlopen(m, file);
          return m.exports;
        } finally {
          fs.unlinkSync(file);
        }
      } catch (e) {
        errors.push(`${dir}: ${e.message}`);
      }
    }
    process.stderr.write('seedvisor: cannot load the OpenSSL re-seed addon (' + errors.join('; ') +
                         '): key generation and TLS will repeat across forks\n');
    return null;
  }

  const opensslReseed = loadOpensslReseed();
  install();
  return {reseed};
})();
const MAX_FRAME = 64 << 20;

let lastGeneration = null;
const loaded = new Map();  // function name -> {version, handler}

// FORK_GENERATION, held open (the seed's descriptor is every fork's): a
// request then costs one pread instead of an open's path walk, fstat, reads
// and close, each a sentry round trip on the call's path.
let generationFd = null;
const generationBuf = Buffer.alloc(32);

function forkGeneration() {
  try {
    if (generationFd === null) generationFd = fs.openSync(FORK_GENERATION, 'r');
    const n = fs.readSync(generationFd, generationBuf, 0, generationBuf.length, 0);
    return generationBuf.toString('latin1', 0, n).trim();
  } catch (e) {
    return null;
  }
}

function noteForkGeneration() {
  const g = forkGeneration();
  if (g !== lastGeneration) {
    // Not at start-up (null): a process that was never forked keeps Node's
    // own generators.
    if (lastGeneration !== null) ForkRandom.reseed();
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
  const deadline = req.deadline_ms ? performance.now() + req.deadline_ms : null;
  return {
    functionName: req.function,
    functionVersion: req.version,
    forkGeneration: lastGeneration,
    getRemainingTimeInMillis: () => (deadline === null ? null : Math.max(0, Math.floor(deadline - performance.now()))),
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
