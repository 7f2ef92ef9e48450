#!/usr/bin/env bash
# The kvm platform's floor beside the platforms we have (platform/kvm/README.md):
# one guest syscall (getppid) and one first-touch page fault, natively, under
# seedsc on systrap, ptrace and kvm, under Debian's gVisor runsc (ptrace: its kvm
# platform hangs on these machines), and in the smallest KVM VM that answers
# a syscall (bench/kvm_floor.c: no sentry, so no kvm platform can be faster
# with that design on this host). One run, rounds interleaved, medians and
# ratios to native, idle and beside `stress-ng --cpu 2` (+cpu rows). Also
# clock_gettime(CLOCK_MONOTONIC) per call: natively and in the sandboxes
# through the vDSO, and on kvm once more without it (seedsc-kvm-novdso:
# SEEDSC_KVM_VDSO=0, every clock read a syscall, as before the guest had
# one; platform/kvm/README.md, "The vDSO"). seedsc-kvm-nospin is seedsc-kvm
# whose stub sleeps at once for the sentry's answer (SEEDSC_KVM_SPIN_US=0,
# as before it spun; README.md, "The handoff").
#
#   bash bench/kvm_bench.sh [--smoke] [--rounds N] [--floor PATH]
#                           [--seedsc PATH] [--runsc PATH] [--no-loaded]
#
# Or: bazel run //bench:kvm_bench -- [flags]. Defaults: --floor beside the
# script or bazel-bin/bench/kvm_floor, --seedsc bazel-bin/runsc/seedsc if
# built, --runsc $(command -v runsc), 3 rounds. A runtime that is missing is
# n/a; one that is present but fails is an error (exit 1). Without a usable
# /dev/kvm the kvm-floor column is n/a with kvm_floor's message.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$here/.." && pwd)}"
# shellcheck source=bench/bench_lib.sh
source "$here/bench_lib.sh"

smoke=0 rounds=3 loaded=1
floor="$here/kvm_floor"
[[ -x "$floor" ]] || floor="$repo/bazel-bin/bench/kvm_floor"
seedsc="${SEEDSC:-}"
runsc="${RUNSC:-$(command -v runsc || true)}"
while (($#)); do
  case "$1" in
    --smoke) smoke=1 loaded=0 ;;
    --no-loaded) loaded=0 ;;
    --rounds) rounds="$2"; shift ;;
    --rounds=*) rounds="${1#*=}" ;;
    --floor) floor="$2"; shift ;;
    --floor=*) floor="${1#*=}" ;;
    --seedsc) seedsc="$2"; shift ;;
    --seedsc=*) seedsc="${1#*=}" ;;
    --runsc) runsc="$2"; shift ;;
    --runsc=*) runsc="${1#*=}" ;;
    -h|--help) sed -n '2,23p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "kvm_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
[[ -z "$seedsc" && -x "$repo/bazel-bin/runsc/seedsc" ]] && seedsc="$repo/bazel-bin/runsc/seedsc"
if [[ ! -x "$floor" ]]; then
  echo "kvm_bench: no kvm_floor at $floor (bazel build //bench:kvm_floor)" >&2
  exit 2
fi
floor="$(realpath "$floor")"
[[ -n "$seedsc" ]] && seedsc="$(realpath "$seedsc")"
stress_ng="$(command -v stress-ng || true)"
if ((loaded)) && [[ -z "$stress_ng" ]]; then
  echo "kvm_bench: the +cpu rows need stress-ng (or --no-loaded)" >&2
  exit 2
fi
if ((smoke)); then
  rounds=1 native_iters=200 sandbox_iters=50 kvm_iters=20
else
  native_iters=200000 sandbox_iters=5000 kvm_iters=1000
fi

names=(native)
declare -A cmd iters
cmd[native]="$floor native"
iters[native]=$native_iters
# Where the kvm platform cannot start (no usable /dev/kvm: its one-line
# reason, as test/kvm_skip.sh), its columns are n/a and say why.
seedsc_platforms=systrap,ptrace,kvm seedsc_kvm_note=""
if [[ -n "$seedsc" && -x "$seedsc" ]] && ! probe="$("$seedsc" --platform=kvm do /bin/true 2>&1)" &&
   grep -q "kvm: " <<<"$probe"; then
  seedsc_platforms=systrap,ptrace
  seedsc_kvm_note="seedsc-kvm, -novdso, -nospin: n/a ($(grep -m1 -o "kvm: .*" <<<"$probe"))"
fi
add_runtimes "$seedsc" "$seedsc_platforms" "$runsc" ptrace
if [[ -n "$seedsc" && -x "$seedsc" && -z "$seedsc_kvm_note" ]]; then
  names+=(seedsc-kvm-novdso seedsc-kvm-nospin)
  cmd[seedsc-kvm-novdso]="env SEEDSC_KVM_VDSO=0 $seedsc --platform=kvm do --"
  cmd[seedsc-kvm-nospin]="env SEEDSC_KVM_SPIN_US=0 $seedsc --platform=kvm do --"
fi
for name in "${names[@]:1}"; do
  cmd[$name]="${cmd[$name]} $floor native"
  iters[$name]=$sandbox_iters
done
kvm_note=""
if kvm_out="$("$floor" kvm 10 2>&1)"; then
  names+=(kvm-floor)
  cmd[kvm-floor]="$floor kvm"
  iters[kvm-floor]=$kvm_iters
else
  kvm_note="kvm-floor: n/a ($(head -1 <<<"$kvm_out"))"
fi

declare -A samples not_measured
# The floor's guest has no clock to read (bench/kvm_floor.c, kvm mode).
for m in clock_gettime clock_gettime_p50 clock_gettime_p99; do
  not_measured["kvm-floor $m"]=1 not_measured["kvm-floor $m+cpu"]=1
done
base_metrics=(getppid getppid_p50 getppid_p99 touch_per_page clock_gettime clock_gettime_p50
  clock_gettime_p99)
with_loaded "${base_metrics[@]}"
# One runtime in one pass (bench_lib.sh's run_loaded_rounds); the kvm floor's
# VM costs are kept from its idle passes.
bench_case() {
  local name="$1" suffix="$2" m v
  # shellcheck disable=SC2086  # cmd is a word list on purpose
  run_case kvm_bench "$name" 600 ${cmd[$name]} "${iters[$name]}"
  if [[ $name == kvm-floor && -z "$suffix" ]]; then
    for m in kvm_create_vm kvm_vcpu_setup kvm_ioctl_floor kvm_memslot_gib; do
      v="$(awk -v m="$m" '$1 == m { print $2 }' <<<"$out")"
      [[ -n "$v" ]] && samples["kvm-floor $m"]+="$v "
    done
  fi
}
fail=0
run_loaded_rounds kvm_bench "${base_metrics[@]}"

echo
echo "kvm_bench: ns per call or page, median of $rounds rounds; iterations native=$native_iters sandbox=$sandbox_iters kvm=$kvm_iters"
echo "load average before: $load_before, after: $load_after ($(nproc) CPUs); +cpu: beside stress-ng --cpu 2"
[[ -n "$seedsc" && -x "$seedsc" ]] || echo "(seedsc not built: n/a)"
[[ -n "$runsc" && -x "$runsc" ]] || echo "(runsc not installed: n/a)"
[[ -n "$kvm_note" ]] && echo "$kvm_note"
[[ -n "$seedsc_kvm_note" ]] && echo "$seedsc_kvm_note"
print_table
if [[ -n "${samples[kvm-floor kvm_create_vm]:-}" ]]; then
  echo
  for m in kvm_create_vm kvm_vcpu_setup kvm_ioctl_floor kvm_memslot_gib; do
    printf '%-16s %12s ns (median)\n' "$m" "$(median "${samples["kvm-floor $m"]}")"
  done
fi
if ((fail)); then
  echo "kvm_bench: some runs failed (see above)" >&2
  exit 1
fi
