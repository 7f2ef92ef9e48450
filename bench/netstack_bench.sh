#!/usr/bin/env bash
# TCP bulk throughput and request/response latency over a veth between two
# network namespaces this script makes (nsb_srv 10.77.0.1 <-> nsb_cli
# 10.77.0.2; no other address is used): the server runs natively in
# nsb_srv, the client in nsb_cli natively, under `seedsc --network=host`
# (the host's stack), under `seedsc --network=sandbox --netns` (the
# sandbox's own stack, which takes the veth end over) and under runsc
# (gVisor's netstack, `runsc --network=sandbox run` of a bundle joined to
# nsb_cli), side by side, rounds interleaved; then the same again with
# `stress-ng --cpu 2` running (the loaded column). The pair is made afresh
# for every run (a takeover keeps the interface). Rows: bulk throughput
# from the client (tput) and to it (rtput), request/response latency
# (rr, --rr-size bytes each way, 1 by default), and throughput over the
# client's own loopback (lo_tput: net_bench loop, server and client in the
# same sandbox).
#
#   bash bench/netstack_bench.sh [--smoke] [--rounds N] [--seedsc PATH]
#        [--base-seedsc PATH] [--runsc PATH] [--platform NAME]
#        [--runsc-platform NAME] [--runc PATH] [--mib N] [--trips N] [--rr-size N]
#        [--no-load]
#
# --base-seedsc: an older seedsc binary whose own stack runs beside the
# current one as column `sandbox-base` (a before/after in the same run).
#
# Defaults: --seedsc $SEEDSC or bazel-bin/runsc/seedsc, --runsc $(command -v
# runsc), 3 rounds, --platform systrap (seedsc), --runsc-platform ptrace
# (Debian's runsc has no systrap), 64 MiB, 2000
# round trips of 64 bytes. Prints the medians (MiB/s; RR p50/p99 in µs),
# each runtime's ratio to native, and the spread. A runtime that cannot run
# is n/a with its reason; the script fails only if native or seedsc fail.
# --smoke: one round, 4 MiB, 100 trips, no loaded pass: numbers mean nothing.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$here/.." && pwd)}"
# shellcheck source=bench/bench_lib.sh
source "$here/bench_lib.sh"

smoke=0 rounds=3 mib=64 trips=2000 rr_size=1 load=1 platform=systrap runsc_platform=ptrace
bench="$here/net_bench"
[[ -x "$bench" ]] || bench="$repo/bazel-bin/bench/net_bench"
seedsc="${SEEDSC:-$repo/bazel-bin/runsc/seedsc}"
runsc="${RUNSC:-$(command -v runsc || true)}"
runc="${RUNC:-$(command -v runc || true)}"
base_seedsc=""
while (($#)); do
  case "$1" in
    --smoke) smoke=1 ;;
    --rounds) rounds="$2"; shift ;;
    --seedsc) seedsc="$2"; shift ;;
    --base-seedsc) base_seedsc="$2"; shift ;;
    --base-seedsc=*) base_seedsc="${1#*=}" ;;
    --runsc) runsc="$2"; shift ;;
    --platform) platform="$2"; shift ;;
    --runsc-platform) runsc_platform="$2"; shift ;;
    --mib) mib="$2"; shift ;;
    --trips) trips="$2"; shift ;;
    --rr-size) rr_size="$2"; shift ;;
    --bench) bench="$2"; shift ;;
    --no-load) load=0 ;;
    --seedsc=*) seedsc="${1#*=}" ;;
    --runsc=*) runsc="${1#*=}" ;;
    --runc) runc="$2"; shift ;;
    --runc=*) runc="${1#*=}" ;;
    --bench=*) bench="${1#*=}" ;;
    *) echo "netstack_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
if ((smoke)); then rounds=1 mib=4 trips=100 load=0; fi
for f in "$bench" "$seedsc" ${base_seedsc:+"$base_seedsc"}; do
  [[ -x "$f" ]] || { echo "netstack_bench: '$f' is not an executable (build it first)" >&2; exit 2; }
done
((EUID == 0)) || { echo "netstack_bench: needs root (network namespaces)" >&2; exit 2; }

T="$(mktemp -d /tmp/netstack_bench.XXXXXX)"
srv=nsb_srv$$ cli=nsb_cli$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  ip netns del "$srv" 2>/dev/null
  ip netns del "$cli" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

# A fresh pair: the server's end stays, the client's is made again.
make_pair() {
  # Deleting the veth itself is synchronous; a namespace's devices go later.
  ip -n "$srv" link del peer0 2>/dev/null
  ip netns del "$cli" 2>/dev/null
  ip netns list | grep -q "^$srv\b" || { ip netns add "$srv" && ip -n "$srv" link set lo up; } || return 1
  ip netns add "$cli" && ip -n "$cli" link set lo up &&
    ip -n "$cli" link add eth0 type veth peer name peer0 netns "$srv" &&
    ip -n "$cli" addr add 10.77.0.2/24 dev eth0 && ip -n "$srv" addr add 10.77.0.1/24 dev peer0 &&
    ip -n "$cli" link set eth0 up && ip -n "$srv" link set peer0 up
}

# runsc: a bundle whose only file is the client, joined to nsb_cli. Debian's
# runsc (2022) refuses to run a sandbox network in what it takes for the
# root namespace: its isRootNS() looks for /proc/sys/net/core/rmem_default,
# which Linux since about 6.8 shows in every namespace (gVisor issue
# 10704). runsc runs here inside nsb_cli (where /proc/sys/net is that
# namespace's) in a mount namespace of its own with an empty tmpfs over
# /proc/sys/net/core, so that the test looks where it should.
make_bundle() {  # RUNTIME (runsc or runc, whose `spec` writes config.json)
  [[ -f "$T/bundle/config.json" ]] && return 0
  mkdir -p "$T/bundle/rootfs" && cp "$bench" "$T/bundle/rootfs/net_bench" &&
    (cd "$T/bundle" && "$1" spec) || return 1
}
bundle_args() {  # ARGS...: the bundle runs net_bench ARGS, joined to nsb_cli
  python3 - "$T/bundle/config.json" "/run/netns/$cli" "$@" <<'EOF' || return 1
import json, sys
path, netns, args = sys.argv[1], sys.argv[2], sys.argv[3:]
c = json.load(open(path))
c["process"]["args"] = ["/net_bench"] + args
c["process"]["terminal"] = False
c["root"] = {"path": "rootfs", "readonly": True}
for n in c["linux"]["namespaces"]:
    if n["type"] == "network":
        n["path"] = netns
json.dump(c, open(path, "w"))
EOF
}
runc_client() {  # ARGS...: runs net_bench ARGS in a runc container on nsb_cli
  bundle_args "$@" || return 1
  local id="nsbc-$$-$RANDOM"
  (cd "$T/bundle" && timeout 120 "$runc" run --bundle . "$id")
  local rc=$?
  "$runc" delete --force "$id" >/dev/null 2>&1
  return $rc
}
runsc_client() {  # ARGS...: runs net_bench ARGS in a runsc sandbox on nsb_cli
  bundle_args "$@" || return 1
  local id="nsb-$$-$RANDOM"
  (cd "$T/bundle" && timeout 120 nsenter --net="/run/netns/$cli" unshare -m sh -c \
    'mount -t tmpfs -o size=16k none /proc/sys/net/core && exec "$@"' sh \
    "$runsc" --platform="$runsc_platform" --network=sandbox run --bundle . "$id")
  local rc=$?
  "$runsc" delete -force "$id" >/dev/null 2>&1
  return $rc
}

client() {  # RUNTIME ARGS...
  local rt="$1"
  shift
  make_pair || { echo "netstack_bench: cannot make the veth pair" >&2; return 1; }
  case "$rt" in
    native) timeout 120 nsenter --net="/run/netns/$cli" "$bench" "$@" ;;
    seedsc-host)
      timeout 120 nsenter --net="/run/netns/$cli" \
        "$seedsc" --platform="$platform" --network=host do -- "$bench" "$@" ;;
    seedsc-sandbox)
      timeout 120 "$seedsc" --platform="$platform" --network=sandbox do \
        --netns="/run/netns/$cli" -- "$bench" "$@" ;;
    sandbox-base)
      timeout 120 "$base_seedsc" --platform="$platform" --network=sandbox do \
        --netns="/run/netns/$cli" -- "$bench" "$@" ;;
    runsc) runsc_client "$@" ;;
    runc) runc_client "$@" ;;
  esac
}

make_pair || { echo "netstack_bench: cannot make namespaces (root? iproute2?)" >&2; exit 1; }
ip netns exec "$srv" "$bench" server 7777 >"$T/server.log" 2>&1 &
pids+=($!)
names=(native seedsc-host seedsc-sandbox)
[[ -n "$base_seedsc" ]] && names+=(sandbox-base)
if [[ -n "$runc" && -x "$runc" ]] && make_bundle "$runc"; then names+=(runc); fi
if [[ -n "$runsc" && -x "$runsc" ]] && make_bundle "$runsc"; then names+=(runsc); fi
metrics=(tput_mibps rtput_mibps rr_p50_us rr_p99_us lo_tput_mibps)
declare -A samples=() why=()
fail=0

pass() {  # LABEL: every runtime, $rounds rounds, interleaved
  local label="$1" r rt
  for ((r = 1; r <= rounds; r++)); do
    for rt in "${names[@]}"; do
      [[ -n "${why[$rt]:-}" ]] && continue
      out="$(client "$rt" tput 10.77.0.1 7777 "$mib" 2>&1)"
      status=$?
      if ((status != 0)); then
        why[$rt]="$(tail -1 <<<"$out")"
        [[ "$rt" == runsc || "$rt" == runc || "$rt" == sandbox-base ]] || fail=1
        continue
      fi
      record_metrics netstack_bench "$r" "$label$rt" "$out" "$status" tput_mibps
      out="$(client "$rt" rtput 10.77.0.1 7777 "$mib" 2>&1)"
      status=$?
      record_metrics netstack_bench "$r" "$label$rt" "$out" "$status" rtput_mibps
      out="$(client "$rt" rr 10.77.0.1 7777 "$trips" "$rr_size" 2>&1)"
      status=$?
      record_metrics netstack_bench "$r" "$label$rt" "$out" "$status" rr_p50_us rr_p99_us
      out="$(client "$rt" loop "$mib" 2>&1)"
      status=$?
      record_metrics netstack_bench "$r" "$label$rt" "$out" "$status" lo_tput_mibps
    done
  done
}

table() {  # LABEL
  local label="$1" m rt
  printf '%-13s' metric
  for rt in "${names[@]}"; do printf ' %15s' "$rt"; done
  for rt in "${names[@]:1}"; do printf ' %15s' "$rt/nat"; done
  # The issue's targets: the own stack against gVisor's and runc's (the host's).
  printf ' %15s %15s' sandbox/runsc sandbox/runc
  echo
  for m in "${metrics[@]}"; do
    printf '%-13s' "$m"
    for rt in "${names[@]}"; do printf ' %15s' "$(median "${samples["$label$rt $m"]:-}")"; done
    for rt in "${names[@]:1}"; do
      printf ' %15s' "$(ratio "$(median "${samples["$label$rt $m"]:-}")" \
        "$(median "${samples["${label}native $m"]:-}")" 2)"
    done
    for rt in runsc runc; do
      printf ' %15s' "$(ratio "$(median "${samples["${label}seedsc-sandbox $m"]:-}")" \
        "$(median "${samples["$label$rt $m"]:-}")" 2)"
    done
    echo
  done
}

echo "netstack_bench: $rounds round(s), $mib MiB, $trips x $rr_size B round trips, platform $platform, load $(cut -d' ' -f1-3 /proc/loadavg)"
pass ""
echo "== quiet (load before: see above)"
table ""
if ((load)); then
  command -v stress-ng >/dev/null || { echo "netstack_bench: stress-ng is missing: no loaded pass" >&2; load=0; }
fi
if ((load)); then
  stress-ng --cpu 2 --timeout 0 >/dev/null 2>&1 &
  sp=$!
  pids+=("$sp")
  sleep 1
  pass "loaded "
  kill "$sp" 2>/dev/null
  wait "$sp" 2>/dev/null
  echo "== loaded (stress-ng --cpu 2; load $(cut -d' ' -f1-3 /proc/loadavg))"
  table "loaded "
fi
for rt in "${!why[@]}"; do echo "n/a $rt: ${why[$rt]}"; done
((fail == 0))
