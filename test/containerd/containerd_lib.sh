# Shared by the containerd acceptance tests (containerd_test.sh,
# containerd_seed_test.sh), sourced after testlib_init: a private containerd
# (its own root, state and socket under one temp dir), ctr driving
# io.containerd.seedsc.v1, the busybox image, and the leftover checks.
# bench/ctr_run_bench.sh uses ctrd_write_config only (no testlib there).

# ctrd_require TOOL: exits unless run as root with containerd and ctr.
ctrd_require() {
  if ((EUID != 0)); then
    echo "$1: needs root (containerd, mounts)"; exit 1
  fi
  local tool
  for tool in containerd ctr; do
    command -v "$tool" >/dev/null || { echo "$1: $tool not installed (scripts/install-deps.sh)"; exit 1; }
  done
}

# ctrd_init PREFIX: makes this run's temp dir T (/tmp/PREFIX.XXXXXX: short,
# unix socket names must stay under 108 bytes) with bin/ holding the shim,
# and sets ADDR (containerd's socket), RUN_MARKER (see ours) and NS, a
# containerd namespace of this run's own: ctr makes linux.cgroupsPath
# /<namespace>/<id>, and cgroups are host-wide.
ctrd_init() {
  T="$(mktemp -d "/tmp/$1.XXXXXX")"
  mkdir -p "$T/bin" "$T/root" "$T/state" "$T/fifo" "$T/seedsc" "$T/s"
  cp "$SHIM" "$T/bin/containerd-shim-seedsc-v1"
  ADDR="$T/containerd.sock"
  RUN_MARKER="SEEDVISOR_CONTAINERD_TEST=$T"
  NS="$1-${T##*.}"
}

# ctrd_write_config: $T/config.toml for a containerd with its root, state
# and socket ($ADDR) under $T, CRI off.
ctrd_write_config() {
  cat >"$T/config.toml" <<TOML
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$ADDR"
[ttrpc]
  address = ""
TOML
}

# ctrd_start ENV...: writes containerd's config and starts it with the
# shim's environment ENV (NAME=VALUE, besides PATH and the marker), then
# waits until it answers. Sets CTRD_PID, CTR, RUN and IMG.
ctrd_start() {
  ctrd_write_config
  env "$RUN_MARKER" PATH="$T/bin:$PATH" SEEDSC_ROOT="$T/seedsc" SEEDSC_SHIM_SOCKET_DIR="$T/s" "$@" \
    containerd --config "$T/config.toml" --log-level info >"$T/containerd.log" 2>&1 &
  CTRD_PID=$!
  CTR=(ctr --address "$ADDR" --namespace "$NS")
  RUN=("${CTR[@]}" run --fifo-dir "$T/fifo" --runtime io.containerd.seedsc.v1)
  IMG=docker.io/library/busybox:local
  local _
  for _ in $(seq 100); do
    "${CTR[@]}" version >/dev/null 2>&1 && break
    sleep 0.1
  done
}

# ctrd_import: builds and imports the busybox image (case "import") and
# records every event containerd's subscribers decode into $T/events.log
# (EVENTS_PID; ctrd_events_done ends it).
ctrd_import() {
  "$MAKE_IMAGE" "$T/busybox.tar"
  "${CTR[@]}" events >"$T/events.log" 2>&1 &
  EVENTS_PID=$!
  tcase import --grep 'busybox:local' -- "${CTR[@]}" images import "$T/busybox.tar"
}
ctrd_events_done() {
  kill "$EVENTS_PID" 2>/dev/null
  wait "$EVENTS_PID" 2>/dev/null
}

# ctrd_check_events PREFIX PATTERN...: one case per PATTERN (an extended
# regular expression, "/tasks/<topic> ..."): some event line matches it.
ctrd_check_events() {
  local prefix="$1" ev got n=0
  shift
  for ev in "$@"; do
    got="$(grep -E -m1 -- "$ev" "$T/events.log")"
    n=$((n + 1))
    check_ok "${prefix}${n}${ev%% *}" "$([[ -n "$got" ]] && echo 1 || echo 0)" \
      "ctr events shows /$ev/" "a matching line" "${got:-none; log: $(head -c 600 "$T/events.log")}"
  done
}

# The processes this run started (containerd, shims, sandboxes, seedd), and
# only those: seedsc binaries are shared with other runs on this host, so a
# process is ours when its command line or its environment names this run's
# temp dir (containerd's environment, with RUN_MARKER, reaches the shims and
# what they start).
ours() {
  local p
  for p in /proc/[0-9]*; do
    [[ "${p#/proc/}" == "$$" || "${p#/proc/}" == "$BASHPID" ]] && continue
    if { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "$T/" ||
      { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF -- "$RUN_MARKER"; then
      echo "${p#/proc/}"
    fi
  done
}

# ctrd_check_nothing_left WHAT: after containerd (and WHAT else) stopped: no
# process of this run, no mount under T, no cgroup of NS (each removed after
# it is reported).
ctrd_check_nothing_left() {
  sleep 0.3
  local left mounts cgroups p m d
  left="$(ours | tr '\n' ' ')"
  check_eq no_process_left "" "${left% }" "processes of this run after $1 stopped"
  if [[ -n "${left// }" ]]; then
    # shellcheck disable=SC2086  # a list of pids
    ps -o pid,ppid,pgid,stat,args -p "$(echo $left | tr " " ",")" | sed 's/^/     | /'
    for p in $left; do kill -9 "$p" 2>/dev/null; done
  fi
  mounts="$(grep -F " $T/" /proc/self/mounts | cut -d' ' -f2 | tr '\n' ' ')"
  check_eq no_mount_left "" "${mounts% }" "mounts under $T"
  for m in $mounts; do umount -l "$m" 2>/dev/null; done
  cgroups="$(ls -d /sys/fs/cgroup/*/"$NS" 2>/dev/null | tr '\n' ' ')"
  check_eq no_cgroup_left "" "${cgroups% }" "cgroups of this run's namespace $NS"
  for d in $cgroups; do find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null; done
}

# ctrd_finish LOG...: on failure prints the tail of each log under T (and
# keeps T with KEEP_TMP set); removes T; ends the test.
ctrd_finish() {
  if ((TESTLIB_FAILED)); then
    local log
    for log in "$@"; do
      echo "--- $log (last 30 lines)"
      tail -30 "$T/$log"
    done
    [[ -n "${KEEP_TMP:-}" ]] && { echo "kept $T"; testlib_finish; exit 1; }
  fi
  rm -rf "$T"
  testlib_finish
}
