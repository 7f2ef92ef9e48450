#!/usr/bin/env bash
# Sandbox fork soak: N fork + delete cycles from one python seed (default
# 1000), then what is left: processes in the seed's pid namespace, the seed
# sentry's fds, mappings and RSS, and the seed's stub RSS, before and after.
# Not a CI test (minutes); issue 9's "Soak".
#
#   bash bench/sfork_soak.sh [--cycles N] [--seedsc PATH]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CYCLES=1000
SEEDSC=bazel-bin/runsc/seedsc
while (($#)); do
  case "$1" in
    --cycles) CYCLES="$2"; shift 2 ;;
    --seedsc) SEEDSC="$2"; shift 2 ;;
    *) echo "usage: sfork_soak.sh [--cycles N] [--seedsc PATH]" >&2; exit 2 ;;
  esac
done
[[ -x "$SEEDSC" ]] || bazel build //runsc:seedsc
SEEDSC="$(realpath "$SEEDSC")"

T="$(mktemp -d /tmp/sfork-soak.XXXXXX)"
S=("$SEEDSC" --root "$T/state")
cleanup() {
  for id in $("${S[@]}" list --quiet 2>/dev/null); do "${S[@]}" delete --force "$id" >/dev/null 2>&1; done
  exec 9>&- 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

mkdir -p "$T/bundle"
(cd "$T/bundle" && "$SEEDSC" spec)
python3 - "$T/bundle/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = ["/usr/bin/python3", "-c",
    "import json, re, decimal, asyncio, sys\nfor line in sys.stdin: print(line.strip(), flush=True)"]
c["root"] = {"path": "/", "readonly": True}
c["mounts"] = [m for m in c["mounts"] if m["destination"] in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/sys")]
json.dump(c, open(sys.argv[1], "w"), indent=1)
EOF
mkfifo "$T/seed.in"
exec 9<>"$T/seed.in"
"${S[@]}" create --bundle "$T/bundle" seed <"$T/seed.in" >/dev/null
"${S[@]}" start seed
sleep 2  # the imports
"${S[@]}" pause seed
SENTRY=$("${S[@]}" state seed | grep -o '"pid": [0-9]*' | grep -o '[0-9]*$')
NS=$(readlink "/proc/$SENTRY/ns/pid")

procs() {  # live (non-zombie) processes in the seed's pid namespace
  local n=0 p
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/ns/pid" 2>/dev/null)" == "$NS" ]] || continue
    [[ "$(awk '/^State/{print $2}' "$p/status" 2>/dev/null)" == Z ]] || n=$((n + 1))
  done
  echo "$n"
}
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
others_rss() {  # everything else in the namespace (pid 1, zygote, stubs), KiB
  local sum=0 p v
  for p in /proc/[0-9]*; do
    [[ "$(readlink "$p/ns/pid" 2>/dev/null)" == "$NS" && "${p#/proc/}" != "$SENTRY" ]] || continue
    v=$(kb "${p#/proc/}" VmRSS 2>/dev/null || true)
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
snapshot() {
  echo "procs=$(procs) sentry_fds=$(ls "/proc/$SENTRY/fd" | wc -l) sentry_maps=$(wc -l <"/proc/$SENTRY/maps")" \
    "sentry_rss_kb=$(kb "$SENTRY" VmRSS) stubs_rss_kb=$(others_rss)"
}

before=$(snapshot)
start=$(date +%s)
for ((i = 1; i <= CYCLES; i++)); do
  "${S[@]}" fork seed "f$i" </dev/null >/dev/null
  "${S[@]}" delete --force "f$i"
  ((i % 100 == 0)) && echo "  $i cycles, $(($(date +%s) - start)) s: $(snapshot)"
done
sleep 2
after=$(snapshot)
echo "sfork_soak: $CYCLES fork+delete cycles in $(($(date +%s) - start)) s (load $(cut -d' ' -f1 /proc/loadavg))"
echo "  before: $before"
echo "  after:  $after"
