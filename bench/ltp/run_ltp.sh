#!/usr/bin/env bash
# run_ltp.sh: the Linux Test Project's syscall tests natively, under
# `seedsc do` and under Debian's gVisor (`runsc do`), case by case, in one
# run; prints per family the cases, each runtime's passes and the share of
# the natively passing cases each sandbox passes, and writes every case that
# passes natively and fails or hangs in a sandbox to a result file (issue 13).
#
# A bench, not a CI test: CI has no LTP. Build LTP outside the project
# (bench/ltp/README.md) and never commit any of its files. Root only: the
# native column runs LTP's tests as root on this host, so the host-unsafe
# families (clock, swap, modules, mounts, real-time scheduling; see
# ltp_cases.py) and the tests that need a block device are left out unless
# asked for.
#
#   bash bench/ltp/run_ltp.sh --ltp-dir /tmp/ltp --families brk,pipe,futex
#   bash bench/ltp/run_ltp.sh --ltp-dir /tmp/ltp --runtimes native,seedsc,runsc \
#       --seedsc bazel-bin/runsc/seedsc --timeout 120 --out /tmp/ltp_run
#
# Each case's result: pass (exit 0), conf (exit 32: LTP's TCONF, the test
# does not apply), fail, crash (LTP saw the test die by a signal, or the
# runtime itself died by one) or hang (still running after --timeout; LTP's
# own watchdog killing it counts too). Logs: OUT/logs/RUNTIME/TAG.log.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

ltp_dir="" runtimes="native,seedsc" seedsc="bazel-bin/runsc/seedsc" runsc="runsc"
platform="systrap" runsc_platform="ptrace" runtest="" families="" cases="" timeout=90
jobs=1 out="" failures="" with_unsafe=0 with_devices=0 seedsc_flags=""
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while (($#)); do
  case "$1" in
    --ltp-dir) ltp_dir="$2"; shift ;;
    --runtimes) runtimes="$2"; shift ;;
    --seedsc) seedsc="$2"; shift ;;
    --seedsc-flags) seedsc_flags="$2"; shift ;;  # extra global flags, e.g. --systrap-patch=false
    --runsc) runsc="$2"; shift ;;
    --platform) platform="$2"; shift ;;
    --runsc-platform) runsc_platform="$2"; shift ;;
    --runtest) runtest="$2"; shift ;;
    --families) families="$2"; shift ;;
    --cases) cases="$2"; shift ;;
    --timeout) timeout="$2"; shift ;;
    --jobs) jobs="$2"; shift ;;
    --out) out="$2"; shift ;;
    --failures) failures="$2"; shift ;;
    --with-unsafe) with_unsafe=1 ;;
    --with-devices) with_devices=1 ;;
    -h|--help) usage ;;
    *) echo "run_ltp.sh: unknown argument $1" >&2; usage ;;
  esac
  shift
done
[[ -n "$ltp_dir" && -d "$ltp_dir/testcases/bin" ]] ||
  { echo "run_ltp.sh: --ltp-dir must be an installed LTP (DIR/testcases/bin)" >&2; exit 2; }
ltp_dir="$(cd "$ltp_dir" && pwd)"
read -ra seedsc_extra <<<"$seedsc_flags"
runtest="${runtest:-$ltp_dir/runtest/syscalls}"
((EUID == 0)) || { echo "run_ltp.sh: run as root (LTP's syscall tests expect it)" >&2; exit 2; }
out="${out:-$(mktemp -d /tmp/ltp_run.XXXXXX)}"
mkdir -p "$out/tmp"
# The host kernel's config, for LTP's kconfig checks in every runtime: a
# sandbox has no /proc/config.gz, and its release names no /boot/config.
kconfig="$out/kconfig"
if [[ -r /proc/config.gz ]]; then
  zcat /proc/config.gz >"$kconfig"
else
  cp "/boot/config-$(uname -r)" "$kconfig" 2>/dev/null || : >"$kconfig"
fi
failures="${failures:-$out/failures.md}"
IFS=, read -ra rts <<<"$runtimes"
for rt in "${rts[@]}"; do
  case "$rt" in
    native) ;;
    seedsc)
      seedsc="$(realpath "$seedsc")"
      [[ -x "$seedsc" ]] || { echo "run_ltp.sh: no seedsc at $seedsc" >&2; exit 2; } ;;
    runsc) runsc="$(command -v "$runsc")" || { echo "run_ltp.sh: no runsc" >&2; exit 2; } ;;
    *) echo "run_ltp.sh: unknown runtime $rt (native, seedsc, runsc)" >&2; exit 2 ;;
  esac
  mkdir -p "$out/logs/$rt"
done

# The cases: TAG <tab> FAMILY <tab> COMMAND, one a line.
sel=(--runtest "$runtest" --ltp-dir "$ltp_dir")
[[ -n "$families" ]] && sel+=(--families "$families")
[[ -n "$cases" ]] && sel+=(--cases "$cases")
((with_unsafe)) && sel+=(--with-unsafe)
((with_devices)) && sel+=(--with-devices)
python3 "$here/ltp_cases.py" select "${sel[@]}" >"$out/cases.tsv"
echo "run_ltp.sh: $(wc -l <"$out/cases.tsv") cases, runtimes $runtimes, timeout ${timeout}s," \
  "jobs $jobs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%F %T') UTC, out $out" >&2

# run_case RUNTIME TAG COMMAND: one result line, TAG RUNTIME RESULT RC SECONDS.
run_case() {
  local rt="$1" tag="$2" cmd="$3" log="$out/logs/$1/$2.log"
  local tmp="$out/tmp/$rt-$tag"
  mkdir -p "$tmp"
  # LTP finds its helpers and data by PATH and LTPROOT, and makes its
  # directories under TMPDIR; the same environment in every runtime (the
  # sandboxes see this host directory read-only with their own overlay).
  local -a envs=(env "PATH=$ltp_dir/testcases/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    "LTPROOT=$ltp_dir" "TMPDIR=$tmp" "LTP_COLORIZE_OUTPUT=0" "HOME=$tmp"
    "KCONFIG_PATH=$kconfig")
  local -a run
  case "$rt" in
    native) run=("${envs[@]}" sh -c "cd \"\$TMPDIR\" && $cmd") ;;
    seedsc) run=("$seedsc" --platform="$platform" "${seedsc_extra[@]}" "do" --cwd "$tmp" --
                 "${envs[@]}" sh -c "$cmd") ;;
    runsc) run=("$runsc" --network=none --platform="$runsc_platform" "do" --cwd "$tmp" --
                "${envs[@]}" sh -c "$cmd") ;;
  esac
  local start end rc=0
  start=$(date +%s.%N)
  # setsid: the timeout's kill reaches the whole case (its stubs and
  # children included), never this script.
  timeout -k 10 "$timeout" setsid -w "${run[@]}" </dev/null >"$log" 2>&1 || rc=$?
  end=$(date +%s.%N)
  local result
  if ((rc == 124 || rc == 137)) || grep -q "Test killed! (timeout?)" "$log"; then
    result=hang
  elif ((rc == 0)); then
    result=pass
  elif ((rc == 32)); then
    result=conf
  elif grep -q "Test killed by SIG\|killed by signal" "$log" || ((rc > 128)); then
    result=crash
  else
    result=fail
  fi
  rm -rf "$tmp" 2>/dev/null || true
  printf '%s\t%s\t%s\t%s\t%.1f\n' "$tag" "$rt" "$result" "$rc" "$(echo "$end - $start" | bc)"
}

: >"$out/results.tsv"
running=0
while IFS=$'\t' read -r tag _family cmd; do
  for rt in "${rts[@]}"; do
    run_case "$rt" "$tag" "$cmd" >>"$out/results.tsv" &
    running=$((running + 1))
    if ((running >= jobs)); then
      wait -n || true
      running=$((running - 1))
    fi
  done
done <"$out/cases.tsv"
wait
python3 "$here/ltp_cases.py" summary --cases "$out/cases.tsv" --results "$out/results.tsv" \
  --runtimes "$runtimes" --failures "$failures" --logs "$out/logs"
echo "run_ltp.sh: results $out/results.tsv, failures $failures," \
  "load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%F %T') UTC" >&2
