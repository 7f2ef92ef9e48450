#!/usr/bin/env bash
# containerd without per-container exec (issue 10): a container annotated
# dev.seedvisor.seed=NAME is forked from seedd's seed NAME over FRI. A seedd
# and a containerd of this run's own (under one temp dir), Debian's ctr
# driving io.containerd.seedsc.v1, the busybox image of containerd_test.sh.
#
#   containerd_seed_test.sh --seedsc=PATH --shim=PATH --seedd=PATH --image-script=PATH
#
# The shim's SEEDSC_BINARY is a wrapper that records every call: after the
# forked containers it must not have run once. The python seed's init is
# runtimes/python's entry program, so a container answers request frames
# (4-byte big-endian length + JSON) on its stdin.
source "$(dirname "$0")/../e2e/testlib.sh"
source "$(dirname "$0")/containerd_lib.sh"
testlib_init "$@"
SHIM="$(realpath "${TESTLIB_ARGS[shim]:?--shim=PATH is required}")"
SEEDD="$(realpath "${TESTLIB_ARGS[seedd]:?--seedd=PATH is required}")"
MAKE_IMAGE="$(realpath "${TESTLIB_ARGS[image-script]:?--image-script=PATH is required}")"
TESTLIB_TIMEOUT=30s
ctrd_require containerd_seed_test
ctrd_init seedtest
cp "$SEEDSC" "$T/bin/seedsc.real"
cp "$SEEDD" "$T/bin/seedd"
cat >"$T/bin/seedsc" <<EOF
#!/bin/sh
echo "\$*" >>"$T/seedsc.calls"
exec "$T/bin/seedsc.real" "\$@"
EOF
chmod +x "$T/bin/seedsc"
: >"$T/seedsc.calls"
# A port the kernel has just given out as free (a random one could be in
# use: 32768-39999 is the host's ephemeral range, where tests running
# beside this one hold their connections).
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

# seedd: its own state dir, the python seed only, no cgroup pool (the shim
# gives each container the cgroup containerd names).
env "$RUN_MARKER" "$T/bin/seedd" --listen="127.0.0.1:$PORT" --state-dir="$T/seedd" \
  --seedsc="$T/bin/seedsc.real" --node= --cgroup-pool=0 >"$T/seedd.log" 2>&1 &
SEEDD_PID=$!
for _ in $(seq 300); do
  [[ -s "$T/seedd/fri.address" ]] && grep -q 'listening on' "$T/seedd.log" && break
  kill -0 "$SEEDD_PID" 2>/dev/null || break
  sleep 0.1
done
check_ok seedd_up "$(grep -q 'listening on' "$T/seedd.log" && echo 1 || echo 0)" \
  "seedd --state-dir=$T/seedd" "listening" "$(tail -3 "$T/seedd.log")"

ctrd_start SEEDSC_BINARY="$T/bin/seedsc" SEEDD_STATE_DIR="$T/seedd"
SEED=(--annotation dev.seedvisor.seed=python)
# The sandboxes seedd holds (FRI List, through GET /seeds).
seedd_sandboxes() { ls "$T/seedd/seedsc" 2>/dev/null | sort | tr '\n' ' '; }

ctrd_import
seeds_before="$(seedd_sandboxes)"

# A request frame for the python runtime: handler(event) -> {"got": event}.
frame() {
  python3 -c 'import json, struct, sys
b = json.dumps({"function": "f", "version": 1, "handler": "main.handler", "deadline_ms": 10000,
                "files": {"main.py": "import os\ndef handler(e, c):\n    return {\"got\": e, \"pid\": os.getpid()}\n"},
                "event": json.loads(sys.argv[1])}).encode()
sys.stdout.buffer.write(struct.pack(">I", len(b)) + b)' "$1"
}
frame '{"n": 1}' >"$T/req1.bin"
{ frame '{"n": 2}'; frame '{"n": 3}'; } >"$T/req23.bin"

# One request, answered by the fork's init (the seed's entry program), which
# exits 0 at the end of its stdin; --rm deletes the container.
tcase seed_run_request --grep '^\{"result": \{"got": \{"n": 1\}' -- \
  sh -c "$(printf '%q ' "${RUN[@]}") --rm ${SEED[*]} $IMG s1 <$T/req1.bin | tail -c +5"
tcase seed_run_two_requests --grep '"got": \{"n": 3\}' -- \
  sh -c "$(printf '%q ' "${RUN[@]}") --rm ${SEED[*]} $IMG s2 <$T/req23.bin | tr -c '[:print:]' '\n'"
# No stdin at all (--null-io: ctr's own stdin would be copied): the init
# reads end of file at once and exits 0.
tcase seed_run_exit_status --out '' -- "${RUN[@]}" --rm --null-io "${SEED[@]}" "$IMG" s3

# A long-lived forked container (its stdin stays open): state, ps, exec,
# pause/resume, metrics from its own cgroup, a request while it runs, kill.
mkfifo "$T/d1.in"
exec 7<>"$T/d1.in"
"${RUN[@]}" "${SEED[@]}" "$IMG" d1 <"$T/d1.in" >"$T/d1.out" 2>"$T/d1.err" &
D1_CTR=$!
running=""
for _ in $(seq 100); do
  "${CTR[@]}" task ls 2>/dev/null | grep -qE '^d1 +[0-9]+ +RUNNING' && { running=1; break; }
  sleep 0.1
done
check_eq seed_task_running 1 "$running" "ctr task ls shows d1 RUNNING"
frame '{"live": true}' >&7
answered=""
for _ in $(seq 100); do
  grep -aq '"live": true' "$T/d1.out" && { answered=1; break; }
  sleep 0.1
done
check_eq seed_request_while_running 1 "$answered" "d1 answers a frame written to its stdin"
tcase seed_task_ps --grep '^1 ' -- "${CTR[@]}" task ps d1
tcase seed_task_exec --out exec-ok --status 5 -- \
  "${CTR[@]}" task exec --fifo-dir "$T/fifo" --exec-id e1 d1 sh -c 'echo exec-ok; exit 5'
tcase seed_task_exec_stdin --out 'in-exec' --stdin 'in-exec' -- \
  "${CTR[@]}" task exec --fifo-dir "$T/fifo" --exec-id e2 d1 cat
tcase seed_task_exec_tty --grep 'tty-ok /dev/' -- script -qec \
  "$(printf '%q ' "${CTR[@]}") task exec -t --fifo-dir $T/fifo --exec-id e3 d1 sh -c 'echo tty-ok \$(tty)'" /dev/null
tcase seed_task_pause -- "${CTR[@]}" task pause d1
tcase seed_task_paused --grep '^d1 +[0-9]+ +PAUSED' -- "${CTR[@]}" task ls
tcase seed_task_resume -- "${CTR[@]}" task resume d1
tcase seed_task_resumed --grep '^d1 +[0-9]+ +RUNNING' -- "${CTR[@]}" task ls
d1_pid="$("${CTR[@]}" task ls | awk '$1 == "d1" {print $2}')"
d1_cg="$(awk -F: '$2 == "memory" {print $3}' "/proc/${d1_pid:-0}/cgroup" 2>/dev/null)"
check_eq seed_sandbox_in_own_cgroup "/$NS/d1" "$d1_cg" "memory cgroup of d1's sandbox (pid $d1_pid)"
tcase seed_task_metrics --grep '^memory\.usage_in_bytes +[1-9][0-9]* *$' -- "${CTR[@]}" task metrics d1
check_ok seed_in_seedd "$(seedd_sandboxes | grep -qw d1 && echo 1 || echo 0)" \
  "ls $T/seedd/seedsc" "d1 among seedd's sandboxes" "$(seedd_sandboxes)"
# Started through FRI Activate: seedd's GET /seeds does not list it as a seed.
tcase seed_not_a_seed --nogrep '"id":"d1"' -- python3 -c "import urllib.request
print(urllib.request.urlopen('http://127.0.0.1:$PORT/seeds').read().decode())"
tcase seed_task_kill -- "${CTR[@]}" task kill -s KILL d1
for _ in $(seq 100); do kill -0 "$D1_CTR" 2>/dev/null || break; sleep 0.1; done
kill "$D1_CTR" 2>/dev/null
wait "$D1_CTR"
check_eq seed_run_status_after_kill 137 "$?" "ctr run d1's exit status after task kill -s KILL"
exec 7>&-
tcase seed_task_gone --nogrep '^d1 ' -- "${CTR[@]}" task ls  # ctr run deleted it
tcase seed_container_rm -- "${CTR[@]}" c rm d1

# A seed seedd does not have: create fails, naming it and seedd's seeds.
tcase seed_unknown --status any --grep 'seed "nosuch": seedd has no such seed \(its seeds: (l0, )?python-l1(, l0)?\)' -- \
  "${RUN[@]}" --rm --annotation dev.seedvisor.seed=nosuch "$IMG" u1
check_ok seed_unknown_fails "$([[ "$TC_STATUS" != 0 ]] && echo 1 || echo 0)" "ctr run with seed nosuch" \
  "a non-zero status" "$TC_STATUS"
"${CTR[@]}" c rm u1 >/dev/null 2>&1

check_eq seed_no_seedsc_exec "" "$(cat "$T/seedsc.calls")" \
  "seedsc runs by the shim for forked containers ($T/seedsc.calls)"
check_eq seed_sandboxes_gone "$seeds_before" "$(seedd_sandboxes)" "seedd's sandboxes after every container was removed"
check_eq seed_no_cgroup_left "" "$(ls -d /sys/fs/cgroup/*/"$NS" 2>/dev/null | tr '\n' ' ')" \
  "cgroups of this run's namespace $NS"

# The events of s1, as containerd's subscribers decoded them.
ctrd_check_events seed_event_ "/tasks/create .*\"container_id\":\"s1\"" "/tasks/start .*\"container_id\":\"s1\"" \
  "/tasks/exit .*\"container_id\":\"s1\"" "/tasks/delete .*\"container_id\":\"s1\"" \
  "/tasks/exec-started .*\"exec_id\":\"e1\"" "/tasks/paused .*\"container_id\":\"d1\""

# seedd gone: create fails and says so.
kill "$SEEDD_PID"
wait "$SEEDD_PID"
tcase seedd_missing --status any --grep 'seed "python": seedd is not running: no FRI address in' -- \
  "${RUN[@]}" --rm "${SEED[@]}" "$IMG" m1
check_ok seedd_missing_fails "$([[ "$TC_STATUS" != 0 ]] && echo 1 || echo 0)" "ctr run without seedd" \
  "a non-zero status" "$TC_STATUS"
"${CTR[@]}" c rm m1 >/dev/null 2>&1

ctrd_events_done
kill "$CTRD_PID" 2>/dev/null
wait "$CTRD_PID" 2>/dev/null
ctrd_check_nothing_left "seedd and containerd"
ctrd_finish seedd.log containerd.log
