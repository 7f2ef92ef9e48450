#!/usr/bin/env bash
# Acceptance test of containerd-shim-seedsc-v1: Debian's containerd 1.6 with
# its own root, state and socket under a temp dir, a busybox image imported
# from an OCI layout built here, and ctr driving io.containerd.seedsc.v1.
#
#   containerd_test.sh --seedsc=PATH --shim=PATH --image-script=PATH [--only=RE]
#
# --seedsc may be test/containerd/native_seedsc (the reference: processes run
# natively in a chroot) to check the test and the shim without the sentry.
# Afterwards nothing may be left: no process from this run, no mount under
# the temp dir, no shim socket.
source "$(dirname "$0")/../e2e/testlib.sh"
source "$(dirname "$0")/containerd_lib.sh"
testlib_init "$@"
SHIM="$(realpath "${TESTLIB_ARGS[shim]:?--shim=PATH is required}")"
ROBUSTNESS="$(dirname "$0")/shim_robustness.py"
UPDATE="$(dirname "$0")/task_update.py"
MAKE_IMAGE="$(realpath "${TESTLIB_ARGS[image-script]:?--image-script=PATH is required}")"
TESTLIB_TIMEOUT=30s

if [[ "${TESTLIB_ARGS[reference]:-}" == native ]]; then
  KNOWN_FAILING[run_tty]="native_seedsc has no terminals"
  KNOWN_FAILING[task_exec_tty]="native_seedsc has no terminals"
fi
ctrd_require containerd_test
ctrd_init seedsctest
# A private copy: a concurrent build may replace the seedsc under test.
cp "$SEEDSC" "$T/bin/seedsc"
SEEDSC="$T/bin/seedsc"

cleanup() {
  local ids
  ids="$("${CTR[@]}" task ls -q 2>/dev/null)"
  for id in $ids; do
    "${CTR[@]}" task kill -s KILL "$id" >/dev/null 2>&1
    timeout 10 "${CTR[@]}" task rm -f "$id" >/dev/null 2>&1
  done
  for id in $("${CTR[@]}" c ls -q 2>/dev/null); do
    "${CTR[@]}" c rm "$id" >/dev/null 2>&1
  done
  kill "$CTRD_PID" 2>/dev/null
  wait "$CTRD_PID" 2>/dev/null
}

# The shim runs seedsc through a wrapper that holds a container's `seedsc
# create` (and so its shim's Create) while $HOLD/<id> exists, once it has
# said so in $HOLD/<id>.began (the id is create's last argument).
HOLD="$T/hold"
mkdir -p "$HOLD"
cat >"$T/bin/seedsc-hold" <<SH
#!/bin/sh
for id; do :; done
case " \$* " in *" create "*)
  if [ -e "$HOLD/\$id" ]; then
    touch "$HOLD/\$id.began"
    while [ -e "$HOLD/\$id" ]; do sleep 0.05; done
  fi ;;
esac
exec "$SEEDSC" "\$@"
SH
chmod +x "$T/bin/seedsc-hold"

# What the shim needs: its binary on containerd's PATH, seedsc, a root.
ctrd_start SEEDSC_BINARY="$T/bin/seedsc-hold"
# Every event the shim forwards must decode (type URL containerd.events.*).
ctrd_import

tcase run_exit_status --out hi --status 3 -- "${RUN[@]}" --rm "$IMG" t1 sh -c 'echo hi; exit 3'
tcase run_stderr --grep '^to-stderr$' -- "${RUN[@]}" --rm "$IMG" t2 sh -c 'echo to-stderr >&2'
tcase run_stdin --out 'got:hello world' --stdin $'hello world\n' -- \
  "${RUN[@]}" --rm "$IMG" t3 sh -c 'read x; echo "got:$x"'
tcase run_tty --grep 'tty-ok /dev/' -- script -qec \
  "$(printf '%q ' "${RUN[@]}") --rm -t $IMG tt sh -c 'echo tty-ok \$(tty)'" /dev/null
tcase run_stdin_eof --out '3' --stdin $'a\nb\nc\n' -- "${RUN[@]}" --rm "$IMG" t4 wc -l

# A detached task: ps, exec, kill, delete.
# d1's init is pid 1 of its container: like Linux for a namespace's init,
# a signal without a handler does nothing to it, so it traps TERM.
tcase detached_run -- "${RUN[@]}" -d --null-io "$IMG" d1 sh -c 'trap "exit 7" TERM; while :; do sleep 0.1; done'

tcase task_ls_running --grep '^d1 +[0-9]+ +RUNNING' -- "${CTR[@]}" task ls
tcase task_ps --grep '^[0-9]+ ' -- "${CTR[@]}" task ps d1
tcase task_exec --out exec-ok --status 5 -- \
  "${CTR[@]}" task exec --fifo-dir "$T/fifo" --exec-id e1 d1 sh -c 'echo exec-ok; exit 5'
tcase task_exec_stdin --out 'in-exec' --stdin 'in-exec' -- \
  "${CTR[@]}" task exec --fifo-dir "$T/fifo" --exec-id e2 d1 cat
# An exec of a missing binary fails (at Exec, or as 127 like a shell), and
# the task keeps running.
tcase task_exec_missing --status any -- \
  "${CTR[@]}" task exec --fifo-dir "$T/fifo" --exec-id e4 d1 /no/such/binary
check_ok task_exec_missing_fails "$([[ "$TC_STATUS" != 0 ]] && echo 1 || echo 0)" \
  "ctr task exec d1 /no/such/binary" "a non-zero status" "$TC_STATUS: $TC_ERR"
tcase task_running_after_failed_exec --grep '^d1 +[0-9]+ +RUNNING' -- "${CTR[@]}" task ls

# Malformed ttrpc on d1's shim socket: the right codes, and it keeps serving.
d1_address="$(cat "$T/state/io.containerd.runtime.v2.task/$NS/d1/address" 2>/dev/null)"
tcase shim_robustness --out "$(printf '%s\n' 'oversized 8' 'not_a_request 3' 'even_stream 3' \
  'unknown_service 12' 'unknown_method 12' 'bad_payload 3' 'unknown_id 5' \
  'after_junk_connect 0 stream 15')" -- python3 "$ROBUSTNESS" "$d1_address"
tcase shim_serves_after_junk --grep '^[0-9]+ ' -- "${CTR[@]}" task ps d1
tcase task_pause -- "${CTR[@]}" task pause d1
tcase task_paused --grep '^d1 +[0-9]+ +PAUSED' -- "${CTR[@]}" task ls
# The shim's own refusal of a Delete of a paused task names the state
# (ctr checks the state itself and never sends it; containerd's runc shim
# says "cannot delete a paused process").
tcase task_delete_paused_refused \
  --out '9 cannot delete a paused process: d1 (state PAUSED; kill it first)' -- \
  python3 "$ROBUSTNESS" "$d1_address" delete d1
tcase task_resume -- "${CTR[@]}" task resume d1
tcase task_resumed --grep '^d1 +[0-9]+ +RUNNING' -- "${CTR[@]}" task ls
tcase task_metrics --grep 'pids\.current|PIDS' -- "${CTR[@]}" task metrics d1

# Task.Update through containerd's Tasks API (Debian's ctr 1.6 has no `task
# update`): the limits land in the cgroups of d1's sandbox, read here from the
# host, and d1 keeps running. Annotations alone are accepted.
d1_pid="$("${CTR[@]}" task ls | awk '$1 == "d1" {print $2}')"
d1_cg="$(awk -F: '$2 == "memory" {print $3}' "/proc/${d1_pid:-0}/cgroup" 2>/dev/null)"
check_eq sandbox_in_own_cgroup "/$NS/d1" "$d1_cg" "memory cgroup of d1's sandbox (pid $d1_pid)"
tcase task_update --out ok -- /usr/bin/python3 "$UPDATE" "$ADDR" "$NS" d1 \
  '{"memory":{"limit":268435456},"cpu":{"shares":512,"quota":150000,"period":100000,"cpus":"0"},"pids":{"limit":300}}' note=x
check_eq task_update_memory_limit 268435456 "$(cat /sys/fs/cgroup/memory/$NS/d1/memory.limit_in_bytes 2>&1)" \
  "/sys/fs/cgroup/memory/$NS/d1/memory.limit_in_bytes after the update"
check_eq task_update_cpu_shares 512 "$(cat /sys/fs/cgroup/cpu/$NS/d1/cpu.shares 2>&1)" \
  "/sys/fs/cgroup/cpu/$NS/d1/cpu.shares after the update"
check_eq task_update_cpu_quota 150000/100000 \
  "$(cat /sys/fs/cgroup/cpu/$NS/d1/cpu.cfs_quota_us 2>&1)/$(cat /sys/fs/cgroup/cpu/$NS/d1/cpu.cfs_period_us 2>&1)" \
  "cpu.cfs_quota_us/cpu.cfs_period_us of d1 after the update"
check_eq task_update_cpuset 0 "$(cat /sys/fs/cgroup/cpuset/$NS/d1/cpuset.cpus 2>&1)" \
  "/sys/fs/cgroup/cpuset/$NS/d1/cpuset.cpus after the update"
# The pids limit is the container's: it reaches the sandbox (which counts its
# guest tasks; its metrics report the limit) and the host cgroup keeps at
# least that much room (seedsc's has more, for the sentry's threads and
# stubs: runsc/container/cgroup.h, HostPidsMax).
tcase task_update_pids_limit --grep '^pids\.limit +300 *$' -- "${CTR[@]}" task metrics d1
d1_pids_max="$(cat /sys/fs/cgroup/pids/$NS/d1/pids.max 2>&1)"
check_ok task_update_pids_max_room "$([[ "$d1_pids_max" =~ ^[0-9]+$ ]] && ((d1_pids_max >= 300)) && echo 1 || echo 0)" \
  "/sys/fs/cgroup/pids/$NS/d1/pids.max after the update" ">= 300" "$d1_pids_max"
tcase task_update_annotations_only --out ok -- /usr/bin/python3 "$UPDATE" "$ADDR" "$NS" d1 '' a=b
tcase task_update_bad_field --status 1 --grep 'memory\.limit: must be an integer' -- \
  /usr/bin/python3 "$UPDATE" "$ADDR" "$NS" d1 '{"memory":{"limit":"lots"}}'
tcase task_running_after_update --grep '^d1 +[0-9]+ +RUNNING' -- "${CTR[@]}" task ls
tcase task_exec_after_update --out still-here -- \
  "${CTR[@]}" task exec --fifo-dir "$T/fifo" --exec-id e5 d1 echo still-here
# Metrics are the sandbox cgroup's: memory in use (sentry, stubs, guest) and
# the limit just set.
tcase task_metrics_memory --grep '^memory\.usage_in_bytes +[1-9][0-9]* *$' -- "${CTR[@]}" task metrics d1
tcase task_metrics_limit --grep '^memory\.limit_in_bytes +268435456 *$' -- "${CTR[@]}" task metrics d1
tcase task_exec_tty --grep 'tty-ok /dev/' -- script -qec \
  "$(printf '%q ' "${CTR[@]}") task exec -t --fifo-dir $T/fifo --exec-id e3 d1 sh -c 'echo tty-ok \$(tty)'" /dev/null
tcase task_kill -- "${CTR[@]}" task kill d1
stopped=""
for _ in $(seq 100); do
  if "${CTR[@]}" task ls | grep -qE '^d1 +[0-9]+ +STOPPED'; then stopped=1; break; fi
  sleep 0.1
done
check_eq task_stopped_after_kill 1 "$stopped" "ctr task ls shows d1 STOPPED after ctr task kill"
tcase task_rm --grep 'exit code 7' -- "${CTR[@]}" task rm d1
tcase container_rm -- "${CTR[@]}" c rm d1
tcase task_gone --nogrep '^d1 ' -- "${CTR[@]}" task ls

# The sandbox dies under a running task (SIGKILL from outside): the task
# stops with 137 and can be deleted; nothing is left of it.
tcase crash_run -- "${RUN[@]}" -d --null-io "$IMG" k1 sleep 1000
k1_pid="$("${CTR[@]}" task ls | awk '$1 == "k1" {print $2}')"
k1_ours=0
for _ in $(seq 20); do  # a process may be mid-exec when /proc is read
  # grep reads all of ours' output (no -q): an early exit would SIGPIPE ours
  # and, under pipefail, fail the pipeline even on a match.
  [[ -n "$k1_pid" ]] && ours | grep -x "$k1_pid" >/dev/null && { k1_ours=1; break; }
  sleep 0.05
done
check_ok crash_pid_is_ours "$k1_ours" "the task pid of k1 is a process of this run" \
  "pid of this run" "'$k1_pid': $(ps -o pid=,stat=,args= -p "${k1_pid:-0}" | cut -c1-150)"
((k1_ours)) && kill -9 "$k1_pid"
crashed=""
for _ in $(seq 100); do
  if "${CTR[@]}" task ls | grep -qE '^k1 +[0-9]+ +STOPPED'; then crashed=1; break; fi
  sleep 0.1
done
check_eq crash_task_stopped 1 "$crashed" "ctr task ls shows k1 STOPPED after its sandbox was killed"
tcase crash_task_rm --grep 'exit code 137' -- "${CTR[@]}" task rm k1
tcase crash_container_rm -- "${CTR[@]}" c rm k1

# Over its memory limit, a container dies (the guest's memory is charged to
# the sandbox's cgroup: the host OOM killer ends the sandbox) and the shim
# publishes /tasks/oom (checked with the events below, with o1's exit: a
# ctr killed by the test's timeout would show 137 too). The string doubles
# in the shell's own memory: no pipe or device needed.
tcase oom_killed --status 137 -- "${RUN[@]}" --rm --memory-limit 67108864 "$IMG" o1 \
  sh -c 'x=a; while :; do x=$x$x; done'

# Two containers at once, detached and in the foreground.
tcase two_detached_a -- "${RUN[@]}" -d --null-io "$IMG" p1 sleep 1000
tcase two_detached_b -- "${RUN[@]}" -d --null-io "$IMG" p2 sleep 1000
tcase two_both_running --out 2 -- sh -c "$(printf '%q ' "${CTR[@]}") task ls | grep -cE '^p[12] +[0-9]+ +RUNNING'"
tcase two_kill_a -- "${CTR[@]}" task kill -s KILL p1
tcase two_kill_b -- "${CTR[@]}" task kill -s KILL p2
for id in p1 p2; do
  for _ in $(seq 100); do
    "${CTR[@]}" task ls | grep -qE "^$id +[0-9]+ +STOPPED" && break
    sleep 0.1
  done
  tcase "two_rm_$id" -- "${CTR[@]}" task rm "$id"
  "${CTR[@]}" c rm "$id" >/dev/null 2>&1
done
tcase two_foreground --out $'a\nb' -- sh -c "
  $(printf '%q ' "${RUN[@]}") --rm $IMG f1 sh -c 'sleep 0.3; echo a' >$T/f1.out &
  $(printf '%q ' "${RUN[@]}") --rm $IMG f2 sh -c 'sleep 0.3; echo b' >$T/f2.out &
  wait; cat $T/f1.out $T/f2.out"

# A Shutdown while a Create is in flight (issue 14). containerd sends one to
# a shim after a Create it gave up on: h2 (a pod's application container,
# grouped into h1's shim by its annotations) waits behind h1's held Create,
# its ctr gives up after 2 s, containerd deletes h2 (NotFound at once: its
# Create had not begun, and now never does) and sends Shutdown while h1's
# Create still runs and no container exists yet. The shim must stay for h1
# (before f3e3e9a it exited, cutting h1's Create off), h1 must come up, and
# the shim must end after h1's Delete: no shim left.
shim_of() {  # ID: the pid of the shim daemon started for ID
  pgrep -f -- "containerd-shim-seedsc-v1 .*-address $ADDR .*-id $1 .*start\$"
}
touch "$HOLD/h1"
"${RUN[@]}" -d --null-io "$IMG" h1 sleep 1000 >"$T/h1.out" 2>&1 &
h1_run=$!
for _ in $(seq 200); do [[ -e "$HOLD/h1.began" ]] && break; sleep 0.05; done
h1_shim="$(shim_of h1)"
check_ok held_create_began "$([[ -e "$HOLD/h1.began" && -n "$h1_shim" ]] && echo 1 || echo 0)" \
  "h1's seedsc create held, its shim running" "both" "began: $(ls "$HOLD"), shim: '$h1_shim'"
tcase create_given_up --status any --grep 'deadline exceeded' -- "${CTR[@]}" --timeout 2s \
  run --fifo-dir "$T/fifo" --runtime io.containerd.seedsc.v1 -d --null-io \
  --annotation io.kubernetes.cri.container-type=container \
  --annotation io.kubernetes.cri.sandbox-id=h1 "$IMG" h2 sleep 1000
# containerd closes its connection for h2 right after that Shutdown's answer.
gone=""
for _ in $(seq 300); do
  gone="$(grep -E 'cleaning up after shim disconnected.* id=h2 ' "$T/containerd.log")"
  [[ -n "$gone" ]] && break
  sleep 0.1
done
check_ok create_given_up_shutdown_sent "$([[ -n "$gone" ]] && echo 1 || echo 0)" \
  "containerd.log: h2's shim connection closed (after its Shutdown)" "a line" "none"
rm -f "$HOLD/h1"
wait "$h1_run"
h1_status=$?
check_eq held_create_succeeds 0 "$h1_status" \
  "ctr run -d h1 (its Create held across the Shutdown): $(cat "$T/h1.out")"
# (Checked after h1's Create: a shim that exits flushes its events first,
# for up to 2 s.)
shim_alive="$(kill -0 "${h1_shim:-0}" 2>/dev/null && echo 1 || echo 0)"
check_ok shim_stays_for_create_in_flight "$shim_alive" \
  "the shim (pid $h1_shim) after a Shutdown during h1's Create" "running" \
  "$(ps -o pid=,stat=,args= -p "${h1_shim:-0}" | cut -c1-120)"
tcase held_create_running --grep '^h1 +[0-9]+ +RUNNING' -- "${CTR[@]}" task ls
tcase held_create_exec --out h1-here -- \
  "${CTR[@]}" task exec --fifo-dir "$T/fifo" --exec-id e6 h1 echo h1-here
tcase held_create_kill -- "${CTR[@]}" task kill -s KILL h1
for _ in $(seq 100); do
  "${CTR[@]}" task ls | grep -qE '^h1 +[0-9]+ +STOPPED' && break
  sleep 0.1
done
tcase held_create_rm -- "${CTR[@]}" task rm h1
for _ in $(seq 100); do kill -0 "${h1_shim:-0}" 2>/dev/null || break; sleep 0.1; done
check_eq shim_ends_after_last_delete "" "$(shim_of h1; shim_of h2)" \
  "shim daemons of h1's group after h1's Delete"
"${CTR[@]}" c rm h1 h2 >/dev/null 2>&1

# `<shim> delete` (what containerd runs after every shim teardown): a
# DeleteResponse{pid from init.pid, exit_status 137, exited_at} on stdout,
# the stale socket named in `address` removed.
B="$T/ghost-bundle"
mkdir -p "$B/rootfs"
echo 4242 >"$B/init.pid"
printf 'unix://%s' "$T/ghost.sock" >"$B/address"
touch "$T/ghost.sock"
tcase shim_delete_subcommand --grep '^1: 4242 2: 137 3 \{ +1: [0-9]{10} ' -- sh -c "cd $B &&
  $T/bin/containerd-shim-seedsc-v1 -namespace default -address $ADDR \
    -publish-binary /usr/bin/containerd -id ghost -bundle $B delete | protoc --decode_raw | tr '\n' ' '"
check_eq shim_delete_removes_socket "" "$(ls "$T/ghost.sock" 2>/dev/null)" "ls $T/ghost.sock after delete"

# Errors come back with containerd's meaning (NotFound from the shim).
tcase exec_unknown_task --status any --grep 'not found' -- \
  "${CTR[@]}" task exec --exec-id x nosuch true

# The events of t1 and of exec e1, as containerd's subscribers decoded them.
ctrd_events_done
ctrd_check_events event_ "/tasks/create .*\"container_id\":\"t1\"" "/tasks/start .*\"container_id\":\"t1\"" \
  "/tasks/exit .*\"container_id\":\"t1\".*\"exit_status\":3" "/tasks/delete .*\"container_id\":\"t1\"" \
  "/tasks/exec-added .*\"exec_id\":\"e1\"" "/tasks/exec-started .*\"exec_id\":\"e1\"" \
  "/tasks/exit .*\"id\":\"e1\".*\"exit_status\":5" "/tasks/oom .*\"container_id\":\"o1\"" \
  "/tasks/exit .*\"container_id\":\"o1\".*\"exit_status\":137"
tcase events_decode_cleanly --nogrep 'unmarshal|not found|error' -- cat "$T/events.log"

cleanup
ctrd_check_nothing_left containerd
check_eq no_socket_left "" "$(ls "$T/s")" "shim sockets in \$SEEDSC_SHIM_SOCKET_DIR"
check_eq no_sandbox_state_left "" "$(ls "$T/seedsc")" "seedsc state under --root"
ctrd_finish containerd.log
