#!/usr/bin/env bash
# Pod start latency through containerd's CRI plugin (issue 14): for each
# handler, RunPodSandbox + CreateContainer + StartContainer of a pod with one
# busybox container, as a kubelet calls them (test/cri/cri_pods.py --bench
# against the private containerd of test/cri/cri_test.sh; rounds interleaved
# runc/seedsc; stop and remove not timed). Prints p50/p90/p99 (nearest rank)
# and the ratio to runc, idle and then beside `stress-ng --cpu 2`, with the
# load average. runsc: Debian ships no containerd-shim-runsc-v1, and under
# the runc shim (BinaryName) its RunPodSandbox fails ("cannot run with
# network enabled in root network namespace"), so it has no column.
#
#   bash bench/cri_pod_bench.sh [--runs N] [--no-loaded] [--seedsc PATH]
#        [--shim PATH] [--pause PATH] [--seedsc-flags "--network=sandbox ..."]
#
# Defaults: 20 runs; bazel-bin/runsc/seedsc, bazel-bin/shim/containerd-shim-
# seedsc-v1, bazel-bin/test/cri/pause (bazel build //runsc:seedsc
# //shim:containerd-shim-seedsc-v1 //test/cri:pause). Its smoke test,
# //test/cri:cri_pod_bench_smoke_test (--runs 2 --no-loaded), is manual for
# now (see test/cri/BUILD.bazel). Needs root.
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Under bazel test (//test/cri:cri_pod_bench_smoke_test) from the runfiles.
[[ -n "${TEST_SRCDIR:-}" ]] && repo="$TEST_SRCDIR/$TEST_WORKSPACE"
runs=20
loaded=1
seedsc="$repo/bazel-bin/runsc/seedsc"
shim="$repo/bazel-bin/shim/containerd-shim-seedsc-v1"
pause="$repo/bazel-bin/test/cri/pause"
flags="--network=sandbox"
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift ;;
    --no-loaded) loaded=0 ;;
    --seedsc) seedsc="$2"; shift ;;
    --shim) shim="$2"; shift ;;
    --pause) pause="$2"; shift ;;
    --seedsc-flags) flags="$2"; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "cri_pod_bench: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
if ((loaded)) && ! command -v stress-ng >/dev/null; then
  echo "cri_pod_bench: the loaded pass needs stress-ng (or --no-loaded)" >&2
  exit 2
fi

# pass NAME: one cri_test.sh run in bench mode; prints its table.
pass() {
  local out status
  echo "== $1; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  out="$(bash "$repo/test/cri/cri_test.sh" --handler=seedsc --bench="$runs" \
    --bench-handlers=runc,seedsc --pause="$pause" --client="$repo/test/cri/cri_pods.py" \
    --image-script="$repo/test/containerd/make_image.sh" --seedsc="$seedsc" --shim="$shim" \
    --seedsc-flags="$flags" 2>&1)"
  status=$?
  grep -E '^  cri_pods: (pod start|  )' <<<"$out" | sed 's/^  cri_pods: //'
  grep -E 'cri_test: SKIP' <<<"$out"
  echo "   load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  if ((status != 0)); then
    echo "cri_pod_bench: $1: cri_test.sh failed (status $status):"
    grep -E "^(FAIL|  cri_pods: FAIL)" <<<"$out" | head -20
    sed -n '/^--- containerd.log/,$p' <<<"$out" | tail -40
    return 1
  fi
}

pass "idle" || exit 1
if ((loaded)); then
  stress-ng --cpu 2 -t 600 >/dev/null 2>&1 &
  hog=$!
  sleep 0.5
  pass "beside stress-ng --cpu 2"
  status=$?
  kill -TERM "$hog" 2>/dev/null
  wait "$hog" 2>/dev/null
  exit "$status"
fi
