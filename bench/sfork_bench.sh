#!/usr/bin/env bash
# Sandbox fork latency (issue 9, "Performance"): how long from a Fork request
# to the first thing the forked guest does, next to a host fork() of the same
# native process and to cold starts under seedsc, runc and Debian's gVisor,
# in one run (bench/sfork_bench.py does the work).
#
#   bash bench/sfork_bench.sh [--runs N] [--cold-runs N] [--burst N] [--burst-rounds K]
#        [--cases static,python,64MiB,256MiB] [--runtimes seedsc,runc,runsc]
#        [--no-load] [--seedsc PATH] [--seedsc-base PATH] [--guest PATH] [--runsc PATH]
#        [--spares N] [--platform systrap|ptrace|kvm]
#        [--json FILE] [--smoke]
#
# Seeds (each a container paused while its guest is blocked in read(0)):
#   static   bench/sfork_guest.c, static, nothing touched
#   python   Debian's python3 after `import json, re, decimal, asyncio`
#   64MiB    sfork_guest with 64 MiB of heap written
#   256MiB   the same with 256 MiB
#   64MiB-shared  64 MiB of shared anonymous memory written (MAP_SHARED:
#            each fork copies it; not in the default --cases)
#   64MiB-touch  64 MiB of heap written, and every request reads a byte of
#            each of its pages (not in the default --cases): also measures
#            a fork's first request against its second; on kvm the
#            difference is the new VM's first-touch faults (what EPT
#            prefill would save, platform/kvm/README.md)
# The fork's stdin already holds a byte: its read restarts, returns, and
# the guest echoes the byte, so the byte's arrival on the fork's stdout is
# the first thing the forked guest does. Per case, rounds interleaved:
#   native fork            the same program on the host, forking a child
#                          that writes the byte (request byte -> answer)
#   Fork RPC reply         the Fork RPC (ttrpc, control.proto) on an open
#                          connection to the seed's control socket, no exec
#   Fork RPC -> running    ... until the fork's byte arrives
#   seedsc fork -> running spawning `seedsc fork` until the fork's byte
#   seedsc fork exits      ... until the command exits
#   cold start: R          `R run` of the same bundle until the byte (R =
#                          native exec, seedsc, runc, runsc --network=none)
# --seedsc-base PATH: a second seedsc (say, main before a change) whose
# seeds' Fork RPC -> running is measured in the same rounds, interleaved,
# idle and loaded ("base:" rows; "this seedsc / the base" the p50 ratio).
# Each round forks both seeds alike (a Fork RPC and a `seedsc fork`), the
# two in alternating order: the base is favoured by neither.
# --spares N: the seeds keep N forks' host processes ready (annotation
# dev.seedvisor.fork-spares; default: the seed's default, 2); the burst
# starts once they are. --burst-rounds K: the burst K times, each once the
# spares are back: percentiles of each fork's time and of the burst's.
# and: USS/PSS/page tables of an idle fork (its sentry, anchor, zygote and
# stubs; /proc/PID/smaps_rollup) and the minor faults of its host processes
# but the sentry (its stubs' guest faults among them), N forks requested at once (one connection
# each) until all have answered, and the fork latency again under
# `stress-ng --cpu 2`. Every fork is deleted (`seedsc delete --force`) once
# measured. Percentiles are nearest-rank: with 30 cold starts p99 is the
# maximum.
#
# Defaults: 200 forks per kind and case, 30 cold starts, 24 at once, all
# cases, all runtimes found, the loaded column when stress-ng is installed,
# --platform systrap (it applies to every seedsc row, cold starts too);
# seedsc and the guest from bazel-bin (bazel build //runsc:seedsc
# //bench:sfork_guest; the guest is compiled with cc -static when missing).
# --smoke: the static seed only, 5 forks, 1 cold start each, 4 at once, no
# load: checks that everything runs (about 10 s). Root only.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$here/.." && pwd)}"
seedsc="${SEEDSC:-}"
seedsc_base=""
guest=""
runsc="${RUNSC:-$(command -v runsc || true)}"
args=()
while (($#)); do
  case "$1" in
    --smoke) args+=(--runs 5 --cold-runs 1 --burst 4 --mem-samples 1 --cases static --no-load) ;;
    --seedsc) seedsc="$2"; shift ;;
    --seedsc=*) seedsc="${1#*=}" ;;
    --seedsc-base) seedsc_base="$2"; shift ;;
    --seedsc-base=*) seedsc_base="${1#*=}" ;;
    --guest) guest="$2"; shift ;;
    --guest=*) guest="${1#*=}" ;;
    --runsc) runsc="$2"; shift ;;
    --runsc=*) runsc="${1#*=}" ;;
    --runs|--cold-runs|--burst|--burst-rounds|--cases|--runtimes|--json|--mem-samples|--spares|--platform) args+=("$1" "$2"); shift ;;
    --runs=*|--cold-runs=*|--burst=*|--burst-rounds=*|--cases=*|--runtimes=*|--json=*|--mem-samples=*|--spares=*|--platform=*|--no-load)
      args+=("$1") ;;
    -h|--help) sed -n '2,57p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "sfork_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
((EUID == 0)) || { echo "sfork_bench: needs root (bind mounts, runc, seeds)" >&2; exit 2; }
if [[ -z "$seedsc" && -x "$repo/bazel-bin/runsc/seedsc" ]]; then seedsc="$repo/bazel-bin/runsc/seedsc"; fi
[[ -n "$seedsc" && -x "$seedsc" ]] || { echo "sfork_bench: no seedsc (bazel build //runsc:seedsc)" >&2; exit 2; }
seedsc="$(realpath "$seedsc")"
if [[ -n "$seedsc_base" ]]; then
  [[ -x "$seedsc_base" ]] || {
    echo "sfork_bench: --seedsc-base $seedsc_base: not executable" >&2
    exit 2
  }
  args+=(--seedsc-base "$(realpath "$seedsc_base")")
fi

tmp=""
if [[ -z "$guest" && -x "$repo/bazel-bin/bench/sfork_guest" ]]; then guest="$repo/bazel-bin/bench/sfork_guest"; fi
if [[ -z "$guest" ]]; then
  tmp="$(mktemp -d /tmp/sforkguest.XXXXXX)"
  trap 'rm -rf "$tmp"' EXIT
  cc -O2 -static -o "$tmp/sfork_guest" "$here/sfork_guest.c" || exit 2
  guest="$tmp/sfork_guest"
fi

/usr/bin/python3 "$here/sfork_bench.py" --seedsc "$seedsc" --guest "$(realpath "$guest")" \
  --runsc "$runsc" "${args[@]}"
