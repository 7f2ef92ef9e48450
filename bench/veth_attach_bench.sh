#!/usr/bin/env bash
# A sandbox fork's own network on the request path (issue 11): the
# per-instance stack part, a pooled veth and a veth made on the path, side
# by side in one run (veth_attach_bench.cc says what each mode times),
# then again beside `stress-ng --cpu 2`. Root; every namespace and veth is
# the benchmark's own and gone when it ends.
#
#   bash bench/veth_attach_bench.sh [--bench PATH] [--no-loaded] [-- BENCH FLAGS]
#   (BENCH FLAGS: --iters N --create-iters N --pool K)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="${BUILD_WORKSPACE_DIRECTORY:-$(cd "$here/.." && pwd)}"
bench="$here/veth_attach_bench"
[[ -x "$bench" ]] || bench="$repo/bazel-bin/bench/veth_attach_bench"
loaded=1
while (($#)); do
  case "$1" in
    --bench) bench="$2"; shift ;;
    --no-loaded) loaded=0 ;;
    --) shift; break ;;
    *) echo "veth_attach_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
echo "== quiet: $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" "$@" || exit 1
((loaded)) || exit 0
if ! command -v stress-ng >/dev/null; then echo "(no stress-ng: no loaded run)"; exit 0; fi
stress-ng --cpu 2 --timeout 300s >/dev/null 2>&1 &
stress=$!
trap 'kill "$stress" 2>/dev/null; wait "$stress" 2>/dev/null' EXIT
sleep 2
echo "== beside stress-ng --cpu 2: load $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" "$@"
