#!/usr/bin/env bash
# Trinity (Debian's `trinity` syscall fuzzer) inside `seedsc do`, as the
# unprivileged guest user nobody (or, with --user=root, as the guest's root
# with every capability the sandbox gives it), for a while; then checks that
# the sandbox held:
#   - the sentry survived: the guest's script ran to its end and seedsc
#     exited with its status (not killed, no abort);
#   - no host fd leaked into the guest: a fresh guest process has the same
#     fds after trinity as before (the sentry's own host fds, counted while
#     the guest idles before and after, are printed: they grow with what
#     outlives trinity's processes by design, SysV shm segments, the
#     sentry's cache of host dentries, and stay far below its fd limit);
#   - no host path leaked: trinity runs in a host directory that the guest
#     sees through its overlay; afterwards the host directory holds exactly
#     the canary file put there, unchanged;
#   - no host process is left: seedsc runs under a child subreaper that
#     reaps whatever outlives it, which must be nothing.
#
# As root (--user=root, trinity's --dangerous) trinity also opens what only
# root may read (its files provider maps /sys files), mounts, changes ids
# and signals as root: the first such run hung on systrap with patching (a
# private mapping of a 0600 host file took a lock twice, c8636b1).
#
# Trinity never runs outside the sandbox: the guest script refuses to start
# it unless /proc/seedvisor exists (only the sentry has it), and the host
# side only ever starts seedsc.
#
#   trinity_soak.sh --seedsc=PATH [--platform=NAME] [--minutes=30 | --seconds=N]
#                   [--children=4] [--seed=N] [--domain=INET | --domain=none]
#                   [--user=nobody | --user=root]
# The default is a 30-minute soak (not for CI); test/hostile:trinity_smoke_test
# runs it for 45 seconds. trinity must run until timeout(1) stops it (124):
# any other end fails the run.
#
# Trinity's socket fd provider (sockets made at start and handed to the
# fuzzed calls) is on, restricted to one protocol family (--domain, trinity's
# -P; --domain=none turns the provider off): Debian's trinity 2023.01 reads
# past the end of its own protocol table (net_protocols) when it picks a
# random family's setsockopt builder (do_random_sso: rnd() % 46 over a
# shorter table), and crashes with SIGSEGV natively too (seen natively with
# -P UNIX every time and with all families 1 run in 6; in the sandbox with
# all but UNIX 3 runs in 12, gdb at the same instruction as natively). With
# one family that has its own setsockopt builder (INET, INET6) it takes that
# path except once in 100, and no run crashed (8 + 8 in the sandbox, 20 + 20
# natively). -P also makes the fuzzed socket() calls use that family only.
# The perf provider stays off: perf_event_open is ENOSYS in the sandbox and
# trinity's perf provider retries it for more than 30 s before it gives up.
#
# Trinity 2023.01 also aborts itself at start-up about one run in ten,
# natively as in the sandbox: "*** stack smashing detected ***" while its
# files provider maps the files it found (gdb, natively: __stack_chk_fail
# in map_dump() <- add_object() <- open_fds(); map_dump() prints a mapping's
# size into an 11-byte stack buffer, too short for an odd size of 10000
# bytes or more, such as some /sys files have). Seen natively in 2 of 20
# runs (and 1 of 4 under gdb), in the sandbox in 2 of 30, each time before
# "fd providers" was printed. The guest script starts trinity again (up to 4
# times) only for exactly that: status 134, that message, and no
# "fd providers" line yet.
#
# It also starts it again for the socket provider's crash above when it
# happens at start-up: status 139 with trinity's last line "Couldn't find
# socket cachefile. Regenerating." (no fuzzing has begun; the cache is made
# on every run, and the 1-in-100 do_random_sso path is taken there). Seen
# once in the 45 s smoke at load 18 (2026-12-04, seed 1498813770; the same
# seed ran clean again, the path is drawn from rnd() after the sockets'
# own randomness). A crash that repeats 4 times still fails the run.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, check_ok, testlib_finish (no testlib_init)
seedsc="" platform=systrap seconds=$((30 * 60)) children=4 seed="" domain=INET user=nobody
for arg in "$@"; do
  case "$arg" in
    --seedsc=*) seedsc="${arg#*=}" ;;
    --platform=*) platform="${arg#*=}" ;;
    --minutes=*) seconds=$((${arg#*=} * 60)) ;;
    --seconds=*) seconds="${arg#*=}" ;;
    --children=*) children="${arg#*=}" ;;
    --seed=*) seed="${arg#*=}" ;;
    --domain=*) domain="${arg#*=}" ;;
    --user=*) user="${arg#*=}" ;;
    *) echo "trinity_soak: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
[[ -x "$seedsc" ]] || { echo "trinity_soak: need --seedsc=PATH" >&2; exit 2; }
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "trinity_soak: bad duration" >&2; exit 2; }
TRINITY="$(command -v trinity || true)"
if [[ -z "$TRINITY" ]]; then
  echo "FAIL: trinity is not installed (Debian package trinity; scripts/install-deps.sh)"
  exit 1
fi
seedsc="$(realpath "$seedsc")"
tmp="$(mktemp -d /tmp/trinity-soak.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
work="$tmp/work"  # the guest's working directory (and trinity's)
mkdir -p "$work"
chmod 1777 "$work"
printf 'canary %s\n' "$$" > "$work/canary"
chmod 0644 "$work/canary"
canary_sum="$(sha256sum < "$work/canary")"

[[ "$domain" =~ ^[A-Za-z0-9]+$ ]] || { echo "trinity_soak: bad --domain" >&2; exit 2; }
# How trinity is started in the guest: as nobody through setpriv, or as the
# guest's root, which trinity refuses without --dangerous.
case "$user" in
  nobody) as_user="setpriv --reuid=65534 --regid=65534 --clear-groups trinity" ;;
  root) as_user="trinity --dangerous" ;;
  *) echo "trinity_soak: --user is nobody or root" >&2; exit 2 ;;
esac
extra_flags=""
[[ -n "$seed" ]] && extra_flags="-s$seed"
fds_off=perf
if [[ "$domain" == none ]]; then
  fds_off=perf,sockets
else
  extra_flags="$extra_flags -P $domain"
fi
# The guest's script. Phases are marked on stdout; the host samples the
# sentry's fds while the guest sleeps in them.
guest_script='
[ -e /proc/seedvisor ] || { echo "NOT-IN-SANDBOX"; exit 99; }
fds() { ls /proc/self/fd | tr "\n" " "; }
echo "FDS-BEFORE $(fds)"
echo "PHASE baseline"; sleep 3
for attempt in 1 2 3 4; do
  timeout -s INT -k 20 "$1" $5 -q -l off -C "$2" --disable-fds="$3" $4 >/tmp/trinity.out 2>&1
  rc=$?
  # trinity fuzzes its own stdout, a file here, and can grow it to
  # gigabytes of zeros (ftruncate, a write far out): only its tail is shown,
  # without NULs, and a newline ends it so that the next marker starts a line.
  tail -c 65536 /tmp/trinity.out | tr -d "\000"; echo
  if [ "$rc" = 134 ] && grep -q "stack smashing detected" /tmp/trinity.out &&
     ! grep -q "fd providers" /tmp/trinity.out; then
    echo "TRINITY-STARTUP-ABORT attempt $attempt"
    continue
  fi
  if [ "$rc" = 139 ] &&
     [ "$(tail -n 1 /tmp/trinity.out)" = "[main] Couldn'"'"'t find socket cachefile. Regenerating." ]; then
    echo "TRINITY-STARTUP-ABORT attempt $attempt (socket provider)"
    continue
  fi
  break
done
echo "TRINITY-DONE rc=$rc"
echo "FDS-AFTER $(fds)"
echo "PHASE after"; sleep 3
echo "GUEST-DONE"
'
echo "trinity_soak: $seconds s of trinity as $user on $platform ($children children, fd" \
  "providers off: $fds_off, flags: ${extra_flags:-none}), in $work"
python3 - "$here/../e2e" "$seedsc" "$platform" "$work" "$tmp/out" "$tmp/err" "$guest_script" \
  "$seconds" "$children" "$fds_off" "$extra_flags" "$as_user" > "$tmp/host" <<'PY'
import os, subprocess, sys, threading, time
sys.path.insert(0, sys.argv[1])
import subreaper
subreaper.become()  # what outlives seedsc comes here
seedsc, plat, work, out_path, err_path, script, secs, children, fds_off, extra, as_user = \
    sys.argv[2:13]
cmd = [seedsc, "--platform=" + plat, "do", "--cwd=" + work, "--", "/bin/sh", "-c", script,
       "guest", secs, children, fds_off, extra, as_user]
def fd_count(pid):
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return -1
    return len(fds)
samples = {}
# The deadline holds whether or not the guest prints: a timer kills seedsc
# and everything under it (a hung sentry prints nothing, and its processes
# keep the stdout pipe open).
hung = threading.Event()
def on_deadline():
    hung.set()
    subreaper.kill_all()
watchdog = threading.Timer(4 * 10 + int(secs) + 240, on_deadline)  # start-up aborts retried
watchdog.daemon = True
# The guest's stdout carries trinity's raw bytes: they are read and written
# back unchanged (surrogateescape), never decoded strictly (one 0xff byte
# raised UnicodeDecodeError and lost the run's status).
with open(out_path, "w", errors="surrogateescape") as out, open(err_path, "w") as err:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                         text=True, errors="surrogateescape")
    watchdog.start()
    for line in p.stdout:
        out.write(line)
        out.flush()
        if line.startswith("PHASE "):
            time.sleep(1.5)  # the guest sleeps 3 s in each phase
            samples[line.split()[1]] = fd_count(p.pid)
    rc = p.wait()
    watchdog.cancel()
if hung.is_set():
    print("hung")
left = subreaper.leftovers(settle=3)
print("rc", rc)
print("left", len(left))
for line in left:
    print("leftover", line)
print("fds", samples.get("baseline", -1), samples.get("after", -1))
PY

run="seedsc --platform=$platform do trinity as $user for $seconds s"
rc="$(awk '$1 == "rc" {print $2}' "$tmp/host")"
left="$(awk '$1 == "left" {print $2}' "$tmp/host")"
read -r fd_before fd_after < <(awk '$1 == "fds" {print $2, $3}' "$tmp/host")
# The guest's output holds raw bytes (trinity's fuzzed writes reach its
# stdout), so every grep of it reads it as text (-a): without that grep
# answers "binary file matches" and the checks below saw nothing.
grep -a -E '^\[main\] Ran ' "$tmp/out" | tail -1
hung="$(grep -c '^hung' "$tmp/host")"
check_eq "seedsc ended (no hang)" "not killed after the deadline" \
  "$( ((hung)) && echo "killed after the deadline" || echo "not killed after the deadline")" "$run"
check_eq "trinity ran only in the sandbox" 0 "$(grep -a -c NOT-IN-SANDBOX "$tmp/out")" \
  "guard lines (NOT-IN-SANDBOX) in the guest's output"
aborts="$(grep -a -c '^TRINITY-STARTUP-ABORT' "$tmp/out")"
((aborts)) && echo "trinity aborted at start-up $aborts time(s) (its own map_dump() or socket-provider bug, above); started again"
# timeout(1) answers 124 when it had to stop trinity; anything else means
# trinity ended early (139: it crashed, see --domain above).
check_eq "trinity ran to its time limit" "TRINITY-DONE rc=124" \
  "$(grep -a '^TRINITY-DONE' "$tmp/out" || echo "no TRINITY-DONE line")" \
  "the status of timeout $seconds trinity (124: stopped at its time limit)"
check_eq "the sentry survived trinity" 1 "$(grep -a -c '^GUEST-DONE' "$tmp/out")" \
  "GUEST-DONE lines (the guest script's end)"
check_eq "seedsc exits with the guest's status" "exit status 0" "exit status $rc" "$run"
check_eq "no host process left behind" 0 "$left" \
  "host processes left after seedsc exited: $(sed -n 's/^leftover //p' "$tmp/host" | tr '\n' ';')"
echo "the sentry's host fds: $fd_before with the guest idle before trinity, $fd_after after"
check_ok "the sentry's host fds stay bounded" $((fd_before > 0 && fd_after > 0 && fd_after < 4096)) \
  "the sentry's host fds, idle before and after trinity" "0 < after < 4096" \
  "$fd_before before, $fd_after after"
before="$(grep -a '^FDS-BEFORE ' "$tmp/out" | sed 's/^FDS-BEFORE //')"
after="$(grep -a '^FDS-AFTER ' "$tmp/out" | sed 's/^FDS-AFTER //')"
same=0
[[ -n "$before" && "$before" == "$after" ]] && same=1
check_ok "a guest process has the same fds" "$same" "ls /proc/self/fd in the guest" \
  "the same, non-empty" "before: $before, after: $after"
check_eq "the host directory holds only the canary" canary "$(ls -A "$work" | head -5 | tr '\n' ' ' | sed 's/ $//')" \
  "ls -A $work"
check_eq "the canary is unchanged" "$canary_sum 644" \
  "$(sha256sum < "$work/canary") $(stat -c %a "$work/canary")" "sha256sum and mode of $work/canary"
if ((TESTLIB_FAILED)); then
  kept="$(mktemp /tmp/trinity-soak-out.XXXXXX)"
  cp "$tmp/out" "$kept"
  echo "--- guest stdout (tail; all of it kept in $kept) ---"
  grep -a -v futex "$tmp/out" | tail -15 | cat -v
  echo "--- seedsc stderr (tail) ---"; tail -15 "$tmp/err"
fi
testlib_finish
