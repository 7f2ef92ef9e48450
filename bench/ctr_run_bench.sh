#!/usr/bin/env bash
# End-to-end container start cost through containerd: `ctr run --rm IMG ID
# true`, wall clock, for
#   runc    the runc shim (io.containerd.runc.v2) with runc,
#   seedsc  our shim (io.containerd.seedsc.v1) with seedsc,
#   runsc   the runc shim with Debian's gVisor runsc (--network=none through
#           a small wrapper: runsc refuses the host network namespace),
#   seed    our shim with --annotation dev.seedvisor.seed=python: the
#           container is forked from the python seed of a seedd this bench
#           starts (no runtime exec; its init, the python runtime's entry
#           program, ends at the end of its empty stdin, --null-io; `true` is not
#           run),
# measured in one run against one private containerd (root, state and socket
# under a temp dir), rounds interleaved so machine drift hits all alike.
# Prints median and p90 (nearest rank) per runtime. Needs root. Not in CI.
#
#   bash bench/ctr_run_bench.sh [--runs N] [--seedsc PATH] [--shim PATH]
#                               [--seedd PATH] [--seedsc-flags "--platform=ptrace ..."]
#
# Defaults: 10 runs; bazel-bin/runsc/seedsc, bazel-bin/seedd/seedd and
# bazel-bin/shim/containerd-shim-seedsc-v1 (bazel build //runsc:seedsc //seedd
# //shim:containerd-shim-seedsc-v1 first). A runtime whose binary is missing
# is shown as n/a; one that fails a run is an error (exit 1).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runs=10
seedsc="$repo/bazel-bin/runsc/seedsc"
shim="$repo/bazel-bin/shim/containerd-shim-seedsc-v1"
seedd="$repo/bazel-bin/seedd/seedd"
seedsc_flags=""
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift ;;
    --seedsc) seedsc="$2"; shift ;;
    --shim) shim="$2"; shift ;;
    --seedd) seedd="$2"; shift ;;
    --seedsc-flags) seedsc_flags="$2"; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "ctr_run_bench: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
((EUID == 0)) || { echo "ctr_run_bench: needs root" >&2; exit 2; }
for tool in containerd ctr; do
  command -v "$tool" >/dev/null || { echo "ctr_run_bench: $tool not installed" >&2; exit 2; }
done

T="$(mktemp -d /tmp/ctrb.XXXXXX)"
mkdir -p "$T/bin" "$T/root" "$T/state" "$T/fifo" "$T/seedsc"
ADDR="$T/containerd.sock"
source "$repo/test/containerd/containerd_lib.sh"
ctrd_write_config

declare -A RT_ARGS=()
names=()
if command -v runc >/dev/null; then
  names+=(runc)
  RT_ARGS[runc]="--runtime io.containerd.runc.v2"
fi
if [[ -x "$seedsc" && -x "$shim" ]]; then
  cp "$shim" "$T/bin/containerd-shim-seedsc-v1"
  names+=(seedsc)
  RT_ARGS[seedsc]="--runtime io.containerd.seedsc.v1"
fi
seedd_pid=""
if [[ -x "$seedsc" && -x "$shim" && -x "$seedd" ]]; then
  "$seedd" --listen="127.0.0.1:$((20000 + RANDOM % 20000))" --state-dir="$T/seedd" --seedsc="$seedsc" \
    --node= --cgroup-pool=0 >"$T/seedd.log" 2>&1 &
  seedd_pid=$!
  for _ in $(seq 300); do grep -q 'listening on' "$T/seedd.log" && break; sleep 0.1; done
  if grep -q 'listening on' "$T/seedd.log"; then
    names+=(seed)
    # --null-io: the entry program ends at the end of its stdin. ctr's own
    # stdin copy may never open the fifo (it reaches EOF and cancels the
    # open before the shim reads), and then no end of stdin ever comes.
    RT_ARGS[seed]="--runtime io.containerd.seedsc.v1 --null-io --annotation dev.seedvisor.seed=python"
  else
    echo "ctr_run_bench: seedd did not start: $(tail -3 "$T/seedd.log")" >&2
  fi
fi
if command -v runsc >/dev/null; then
  printf '#!/bin/sh\nexec %s --network=none "$@"\n' "$(command -v runsc)" >"$T/bin/runsc-nonet"
  chmod +x "$T/bin/runsc-nonet"
  names+=(runsc)
  RT_ARGS[runsc]="--runtime io.containerd.runc.v2 --runc-binary $T/bin/runsc-nonet"
fi

env PATH="$T/bin:$PATH" SEEDSC_BINARY="$seedsc" SEEDSC_ROOT="$T/seedsc" SEEDSC_FLAGS="$seedsc_flags" \
  SEEDD_STATE_DIR="$T/seedd" containerd --config "$T/config.toml" >"$T/containerd.log" 2>&1 &
ctrd=$!
CTR=(ctr --address "$ADDR")
cleanup() {
  local id
  for id in $("${CTR[@]}" task ls -q 2>/dev/null); do
    "${CTR[@]}" task kill -s KILL "$id" >/dev/null 2>&1
    timeout 10 "${CTR[@]}" task rm -f "$id" >/dev/null 2>&1
  done
  for id in $("${CTR[@]}" c ls -q 2>/dev/null); do "${CTR[@]}" c rm "$id" >/dev/null 2>&1; done
  kill "$ctrd" 2>/dev/null
  wait "$ctrd" 2>/dev/null
  [[ -n "$seedd_pid" ]] && { kill "$seedd_pid"; wait "$seedd_pid"; } 2>/dev/null
  grep -F " $T/" /proc/self/mounts | cut -d' ' -f2 | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
for _ in $(seq 100); do "${CTR[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done

bash "$repo/test/containerd/make_image.sh" "$T/busybox.tar"
"${CTR[@]}" images import "$T/busybox.tar" >/dev/null || { echo "image import failed" >&2; exit 1; }
IMG=docker.io/library/busybox:local

declare -A TIMES=()
run_once() {  # name round
  local name="$1" i="$2" t0 t1
  # shellcheck disable=SC2086
  t0=$(date +%s%N)
  if ! "${CTR[@]}" run --rm --fifo-dir "$T/fifo" ${RT_ARGS[$name]} "$IMG" "b-$name-$i" true \
      >"$T/out" 2>&1; then
    echo "ctr_run_bench: $name failed:" >&2
    cat "$T/out" >&2
    exit 1
  fi
  t1=$(date +%s%N)
  TIMES[$name]+="$(((t1 - t0) / 1000)) "
}

# One warm-up run each (page cache, containerd's first snapshot).
for name in "${names[@]}"; do run_once "$name" warmup; done
TIMES=()
for i in $(seq "$runs"); do
  for name in "${names[@]}"; do run_once "$name" "$i"; done
done

stats() {  # microseconds... -> "median p90 min max" in ms
  sort -n | awk '{v[NR]=$1} END {
    n=NR; med=(n%2) ? v[(n+1)/2] : (v[n/2]+v[n/2+1])/2;
    r=int(0.9*n); if (r<0.9*n) r++; if (r<1) r=1;
    printf "%8.1f %8.1f %8.1f..%.1f\n", med/1000, v[r]/1000, v[1]/1000, v[n]/1000 }'
}

echo
echo "ctr run --rm busybox true, $runs runs each, wall clock (ms)"
printf '%-8s %8s %8s %s\n' runtime median p90 min..max
for name in runc seedsc seed runsc; do
  if [[ -z "${TIMES[$name]:-}" ]]; then
    printf '%-8s %8s\n' "$name" n/a
    continue
  fi
  printf '%-8s %s\n' "$name" "$(tr ' ' '\n' <<<"${TIMES[$name]}" | grep . | stats)"
done
