#!/usr/bin/env bash
# Trinity (Debian's `trinity` syscall fuzzer) inside `seedsc do`, as the
# unprivileged guest user nobody, for a while; then checks that the sandbox
# held:
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
# Trinity never runs outside the sandbox: the guest script refuses to start
# it unless /proc/seedvisor exists (only the sentry has it), and the host
# side only ever starts seedsc.
#
#   trinity_soak.sh --seedsc=PATH [--platform=NAME] [--minutes=30 | --seconds=N]
#                   [--children=4] [--seed=N]
# The default is a 30-minute soak (not for CI); test/hostile:trinity_smoke_test
# runs it for 45 seconds.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, check_ok, testlib_finish (no testlib_init)
seedsc="" platform=systrap seconds=$((30 * 60)) children=4 seed=""
for arg in "$@"; do
  case "$arg" in
    --seedsc=*) seedsc="${arg#*=}" ;;
    --platform=*) platform="${arg#*=}" ;;
    --minutes=*) seconds=$((${arg#*=} * 60)) ;;
    --seconds=*) seconds="${arg#*=}" ;;
    --children=*) children="${arg#*=}" ;;
    --seed=*) seed="${arg#*=}" ;;
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

seed_flag=()
[[ -n "$seed" ]] && seed_flag=("-s$seed")
# The guest's script. Phases are marked on stdout; the host samples the
# sentry's fds while the guest sleeps in them.
guest_script='
[ -e /proc/seedvisor ] || { echo "NOT-IN-SANDBOX"; exit 99; }
fds() { ls /proc/self/fd | tr "\n" " "; }
echo "FDS-BEFORE $(fds)"
echo "PHASE baseline"; sleep 3
timeout -s INT -k 20 "$1" setpriv --reuid=65534 --regid=65534 --clear-groups \
  trinity -q -l off -C "$2" --disable-fds=perf,sockets $3
echo "TRINITY-DONE rc=$?"
echo "FDS-AFTER $(fds)"
echo "PHASE after"; sleep 3
echo "GUEST-DONE"
'
echo "trinity_soak: $seconds s of trinity on $platform ($children children), in $work"
python3 - "$seedsc" "$platform" "$work" "$tmp/out" "$tmp/err" "$guest_script" "$seconds" \
  "$children" "${seed_flag[@]+"${seed_flag[@]}"}" > "$tmp/host" <<'PY'
import ctypes, os, subprocess, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: what outlives seedsc comes here
seedsc, plat, work, out_path, err_path, script, secs, children = sys.argv[1:9]
extra = sys.argv[9] if len(sys.argv) > 9 else ""
cmd = [seedsc, "--platform=" + plat, "do", "--cwd=" + work, "--", "/bin/sh", "-c", script,
       "guest", secs, children, extra]
def fd_count(pid):
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return -1
    return len(fds)
samples = {}
with open(out_path, "w") as out, open(err_path, "w") as err:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL,
                         text=True)
    deadline = time.time() + int(secs) + 240
    for line in p.stdout:
        out.write(line)
        out.flush()
        if line.startswith("PHASE "):
            time.sleep(1.5)  # the guest sleeps 3 s in each phase
            samples[line.split()[1]] = fd_count(p.pid)
        if time.time() > deadline:
            p.kill()
    try:
        rc = p.wait(timeout=max(1, deadline - time.time()))
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
        print("hung")
left = 0
end = time.time() + 3
while time.time() < end:
    try:
        pid, _ = os.waitpid(-1, os.WNOHANG | 0x40000000)  # __WALL
    except ChildProcessError:
        break
    if pid == 0:
        time.sleep(0.05)
        continue
    left += 1
print("rc", rc)
print("left", left)
print("fds", samples.get("baseline", -1), samples.get("after", -1))
PY

run="seedsc --platform=$platform do trinity for $seconds s"
rc="$(awk '$1 == "rc" {print $2}' "$tmp/host")"
left="$(awk '$1 == "left" {print $2}' "$tmp/host")"
read -r fd_before fd_after < <(awk '$1 == "fds" {print $2, $3}' "$tmp/host")
grep -E '^\[main\] Ran ' "$tmp/out" | tail -1
hung="$(grep -c '^hung' "$tmp/host")"
check_eq "seedsc ended (no hang)" "not killed after the deadline" \
  "$( ((hung)) && echo "killed after the deadline" || echo "not killed after the deadline")" "$run"
check_eq "trinity ran only in the sandbox" 0 "$(grep -c NOT-IN-SANDBOX "$tmp/out")" \
  "guard lines (NOT-IN-SANDBOX) in the guest's output"
check_eq "trinity ran to its time limit" 1 "$(grep -c '^TRINITY-DONE' "$tmp/out")" \
  "TRINITY-DONE lines (the guest script after trinity)"
check_eq "the sentry survived trinity" 1 "$(grep -c '^GUEST-DONE' "$tmp/out")" \
  "GUEST-DONE lines (the guest script's end)"
check_eq "seedsc exits with the guest's status" "exit status 0" "exit status $rc" "$run"
check_eq "no host process left behind" 0 "$left" "host processes reaped after seedsc exited"
echo "the sentry's host fds: $fd_before with the guest idle before trinity, $fd_after after"
check_ok "the sentry's host fds stay bounded" $((fd_before > 0 && fd_after > 0 && fd_after < 4096)) \
  "the sentry's host fds, idle before and after trinity" "0 < after < 4096" \
  "$fd_before before, $fd_after after"
before="$(sed -n 's/^FDS-BEFORE //p' "$tmp/out")"
after="$(sed -n 's/^FDS-AFTER //p' "$tmp/out")"
same=0
[[ -n "$before" && "$before" == "$after" ]] && same=1
check_ok "a guest process has the same fds" "$same" "ls /proc/self/fd in the guest" \
  "the same, non-empty" "before: $before, after: $after"
check_eq "the host directory holds only the canary" canary "$(ls -A "$work" | head -5 | tr '\n' ' ' | sed 's/ $//')" \
  "ls -A $work"
check_eq "the canary is unchanged" "$canary_sum 644" \
  "$(sha256sum < "$work/canary") $(stat -c %a "$work/canary")" "sha256sum and mode of $work/canary"
if ((TESTLIB_FAILED)); then
  echo "--- guest stdout (tail) ---"; grep -v futex "$tmp/out" | tail -15
  echo "--- seedsc stderr (tail) ---"; tail -15 "$tmp/err"
fi
testlib_finish
