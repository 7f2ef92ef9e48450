# Shared by the side-by-side bench scripts (run_syscall_bench.sh,
# kvm_bench.sh, pipe_bench.sh, python_startup.sh, ...), which source it. The caller declares `samples` (an
# associative array "<runtime> <metric>" -> space-separated values) and
# `fail`.

# record_metrics TOOL ROUND NAME OUT STATUS METRIC...: adds the value of each
# METRIC line ("<metric> <number>") of a run's output OUT to samples; a
# missing one is reported with the run's output and sets fail=1, unless the
# caller's associative array `not_measured` has "<runtime> <metric>" (a
# runtime that cannot measure it: n/a in the table).
record_metrics() {
  local tool="$1" round="$2" name="$3" out="$4" status="$5" m v
  shift 5
  for m in "$@"; do
    v="$(awk -v m="$m" '$1 == m && $2 ~ /^[0-9.]+$/ { print $2 }' <<<"$out")"
    if [[ -z "$v" ]] && declare -p not_measured &>/dev/null && [[ -n "${not_measured["$name $m"]:-}" ]]; then
      continue
    fi
    if [[ -z "$v" ]]; then
      echo "$tool: round $round: $name printed no $m result (exit $status):" >&2
      sed 's/^/    /' <<<"$out" | head -20 >&2
      fail=1
      continue
    fi
    samples["$name $m"]+="$v "
  done
}

# run_case TOOL NAME SECONDS CMD...: runs CMD (stdout and stderr) with a
# timeout into `out` and its exit status into `status`. A run that fails is
# run once more, with a line saying so: on these shared machines a sandbox
# start sometimes fails for a moment (runsc: "mounting root with overlay:
# cannot allocate memory" under load); a second failure is the result.
run_case() {
  local tool="$1" name="$2" secs="$3"
  shift 3
  out="$(timeout "$secs" "$@" 2>&1 | cat)"
  status=${PIPESTATUS[0]}
  if ((status != 0)); then
    echo "$tool: $name failed (exit $status), running it once more:" >&2
    sed 's/^/    /' <<<"$out" | head -5 >&2
    out="$(timeout "$secs" "$@" 2>&1 | cat)"
    status=${PIPESTATUS[0]}
  fi
}

# add_runtimes SEEDSC PLATFORMS RUNSC RUNSC_PLATFORM: appends the runtimes
# compared with native to `names` and their command prefixes to `cmd` (an
# associative array the caller declares): seedsc-<p> for each p of the
# comma-separated PLATFORMS if SEEDSC is an executable, then runsc (its
# `do`, --network=none) if RUNSC is one.
add_runtimes() {
  add_seedsc_runtimes seedsc "$1" "$2"
  add_runsc_runtime "$3" "$4"
}

# add_seedsc_runtimes LABEL SEEDSC PLATFORMS [FLAG]: LABEL-<p> running
# `SEEDSC [FLAG] --platform=<p> do --` for each p of PLATFORMS (p =
# systrap-patch: systrap with --systrap-patch; systrap: with
# --systrap-patch=false), if SEEDSC is an executable
# (LABEL tells two seedsc builds apart, e.g. "base" for the one compared with;
# FLAG: one more global flag, e.g. --network=none).
add_seedsc_runtimes() {
  local label="$1" seedsc="$2" platforms="$3" p plats
  [[ -n "$seedsc" && -x "$seedsc" ]] || return 0
  [[ -n "${4:-}" ]] && seedsc="$seedsc $4"
  IFS=, read -ra plats <<<"$platforms"
  for p in "${plats[@]}"; do
    names+=("$label-$p")
    if [[ "$p" == systrap-patch ]]; then  # systrap with syscall-site patching
      cmd["$label-$p"]="$seedsc --platform=systrap --systrap-patch do --"
    elif [[ "$p" == systrap ]]; then  # every syscall trapping (patching is the default)
      cmd["$label-$p"]="$seedsc --platform=systrap --systrap-patch=false do --"
    else
      cmd["$label-$p"]="$seedsc --platform=$p do --"
    fi
  done
}

# add_runsc_runtime RUNSC PLATFORM: runsc's `do` (--network=none skips host
# network setup), if RUNSC is an executable.
add_runsc_runtime() {
  local runsc="$1" platform="$2"
  [[ -n "$runsc" && -x "$runsc" ]] || return 0
  names+=(runsc)
  cmd[runsc]="$runsc --network=none --platform=$platform do"
}

# default_seedsc_and_runc_do REPO: what a script compares with unless told
# otherwise (python_startup.sh, gil_convoy.sh): `seedsc`, the caller's or
# else REPO's bazel-bin/runsc/seedsc if built, as an absolute path; and
# `runc_do`, bench/runc_do.sh when runc is installed and we are root (runc
# needs it), else "".
default_seedsc_and_runc_do() {
  local repo="$1"
  if [[ -z "$seedsc" && -x "$repo/bazel-bin/runsc/seedsc" ]]; then
    seedsc="$repo/bazel-bin/runsc/seedsc"
  fi
  if [[ -n "$seedsc" ]]; then seedsc="$(realpath "$seedsc")"; fi
  runc_do=""
  if command -v runc >/dev/null && [[ $EUID -eq 0 ]]; then
    runc_do="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/runc_do.sh"
  fi
}

median() {  # median of whitespace-separated numbers, or n/a
  tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '
    { v[NR] = $1 } END {
      if (NR == 0) { print "n/a"; exit }
      if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {  # a / b with DIGITS decimals (default 1), or n/a
  awk -v a="$1" -v b="$2" -v d="${3:-1}" 'BEGIN {
    if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.*fx\n", d, a / b }'
}

percent() {  # a / b as a percentage with 2 decimals, or n/a
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "n/a" || b == "n/a" || b + 0 == 0) print "n/a"; else printf "%.2f%%\n", 100 * a / b }'
}

# print_table: the medians of every metric in `metrics` for every runtime in
# `names` (names[0] is native), each sandbox's ratio to native (as a percent
# when ratio_percent=1), then the spread of the rounds (a wide one means a
# noisy machine).
print_table() {
  header=("metric")
  for name in "${names[@]}"; do header+=("$name"); done
  for name in "${names[@]:1}"; do header+=("$name/nat"); done
  local w=13 h
  for h in "${header[@]}"; do ((${#h} > w)) && w=${#h}; done
  printf '%-13s' "${header[0]}"; printf " %${w}s" "${header[@]:1}"; echo
  for m in "${metrics[@]}"; do
    declare -A med=()
    for name in "${names[@]}"; do med[$name]="$(median "${samples["$name $m"]:-}")"; done
    row=()
    for name in "${names[@]}"; do row+=("${med[$name]}"); done
    for name in "${names[@]:1}"; do
      if ((${ratio_percent:-0})); then
        row+=("$(percent "${med[$name]}" "${med[native]}")")
      else
        row+=("$(ratio "${med[$name]}" "${med[native]}" 2)")
      fi
    done
    printf '%-13s' "$m"; printf " %${w}s" "${row[@]}"; echo
    unset med
  done
  print_spread 13 19
}

# print_spread NAME_WIDTH COLUMN_WIDTH: min..max of every metric's rounds for
# every runtime: a wide spread means a noisy machine (other load).
print_spread() {
  local m name row
  echo
  printf "%-$1s" "min..max"; printf " %$2s" "${names[@]}"; echo
  for m in "${metrics[@]}"; do
    row=()
    for name in "${names[@]}"; do
      row+=("$(tr ' ' '\n' <<<"${samples["$name $m"]:-}" | grep . | sort -g |
        awk 'NR == 1 { lo = $1 } { hi = $1 } END { print NR ? lo ".." hi : "n/a" }')")
    done
    printf "%-$1s" "$m"; printf " %$2s" "${row[@]}"; echo
  done
}

# A host CPU hog for the loaded columns: stress-ng with one CPU-bound worker
# per CPU of this 2-CPU machine ($stress_ng, set by the caller), for at most
# $1 seconds, until stop_hog.
hog_pid=""
start_hog() {
  "$stress_ng" --cpu 2 -t "$1" >/dev/null 2>&1 &
  hog_pid=$!
  sleep 0.5  # let its workers start
}
stop_hog() {
  [[ -n "$hog_pid" ]] || return 0
  kill -TERM "$hog_pid" 2>/dev/null
  wait "$hog_pid" 2>/dev/null
  hog_pid=""
}

# with_loaded METRIC...: sets `metrics` to each METRIC followed, when
# loaded=1, by METRIC+cpu (its value beside the CPU hog).
with_loaded() {
  local m
  metrics=()
  for m in "$@"; do
    metrics+=("$m")
    ((loaded)) && metrics+=("$m+cpu")
  done
}

# run_loaded_rounds TOOL METRIC...: `rounds` rounds of an idle pass and, when
# loaded=1, a pass beside the CPU hog. In each pass, for every runtime in
# `names`, calls the caller's `bench_case NAME SUFFIX` (SUFFIX is "" or
# "+cpu"; it runs run_case, leaving `out` and `status`), then records each
# METRIC of `out` (as METRIC+cpu in a loaded pass). Sets load_before and
# load_after (the load average around the whole run).
run_loaded_rounds() {
  local tool="$1" r pass suffix name m
  shift
  local -a m_pass
  trap stop_hog EXIT
  load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
  for ((r = 1; r <= rounds; r++)); do
    for pass in idle cpu; do
      suffix=""
      if [[ $pass == cpu ]]; then
        ((loaded)) || continue
        suffix="+cpu"
        start_hog 3600
      fi
      for name in "${names[@]}"; do
        bench_case "$name" "$suffix"
        # Each "<metric> <value>" line of a loaded pass counts as "<metric>+cpu".
        [[ -n "$suffix" ]] && out="$(awk -v s="$suffix" 'NF == 2 { $1 = $1 s } { print }' <<<"$out")"
        m_pass=()
        for m in "$@"; do m_pass+=("$m$suffix"); done
        record_metrics "$tool" "$r" "$name" "$out" "$status" "${m_pass[@]}"
      done
      stop_hog
    done
    echo "round $r/$rounds done" >&2
  done
  load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
}
