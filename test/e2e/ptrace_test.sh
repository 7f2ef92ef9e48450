#!/usr/bin/env bash
# End-to-end: ptrace inside the sandbox (issue 16). strace follows forks and
# decodes syscalls, and gdb runs a crashing program and prints its
# backtrace, as on the host. Each case SKIPs with a message when its tool is
# not installed (scripts/install-deps.sh installs strace and gdb).
#
#   bash test/e2e/ptrace_test.sh --crasher=PATH/crasher [--seedsc=PATH]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/testlib.sh"
testlib_init "$@"

CRASHER="$(realpath "${TESTLIB_ARGS[crasher]:-$here/../../bazel-bin/test/e2e/crasher}")"
[[ -x "$CRASHER" ]] || { echo "ptrace_test: no crasher at $CRASHER (--crasher=PATH)" >&2; exit 2; }
cd "$TESTLIB_TMP" || exit 2

# missing TOOL CASE...: prints SKIP lines and returns 0 when TOOL is absent.
missing() {
  local tool="$1" c
  shift
  [[ -x "$tool" ]] && return 1
  for c in "$@"; do
    echo "SKIP $c ($tool is not installed: scripts/install-deps.sh installs it)"
    TESTLIB_SKIPPED=$((TESTLIB_SKIPPED + 1))
  done
  return 0
}

if ! missing /usr/bin/strace strace_f_true strace_f_true_exits strace_follows_python_children \
  strace_decodes_file_calls strace_signals strace_signal_kills strace_exit_status; then
  tcase strace_f_true --grep '^execve\("/bin/true", \["/bin/true"\], .*\) = 0$' -- \
    "${DO[@]}" /usr/bin/strace -f /bin/true
  check_eq strace_f_true_exits "+++ exited with 0 +++" "$(tail -1 <<<"$TC_ERR")" "strace -f /bin/true"
  # -f: the child's exec is traced too, with its pid; -e trace=file decodes
  # paths read through process_vm_readv.
  tcase strace_follows_python_children \
    --grep '^\[pid +[0-9]+\] execve\("/bin/true", \["/bin/true"\], .*\) = 0$' -- \
    "${DO[@]}" /usr/bin/strace -f -e trace=file /usr/bin/python3 -c \
    'import subprocess; subprocess.run(["/bin/true"])'
  tcase strace_decodes_file_calls --grep '^openat\(AT_FDCWD, "/etc/hostname", O_RDONLY\) = 3$' -- \
    "${DO[@]}" /usr/bin/strace -e trace=file /bin/cat /etc/hostname
  # A signal is shown, delivered, and the killed process's end reported;
  # strace then dies of the same signal.
  tcase strace_signals --status any \
    --grep '^--- SIGTERM \{si_signo=SIGTERM, si_code=SI_USER, si_pid=[0-9]+, si_uid=0\} ---$' -- \
    "${DO[@]}" /usr/bin/strace -f -e trace=none /bin/sh -c 'kill -TERM $$'
  check_eq strace_signal_kills "+++ killed by SIGTERM +++ 143" "$(tail -1 <<<"$TC_ERR") $TC_STATUS" \
    "strace -f sh -c 'kill -TERM \$\$'"
  tcase strace_exit_status --status 3 -- \
    "${DO[@]}" /usr/bin/strace -f -o /dev/null /bin/sh -c '(exit 2); exit 3'
fi

if ! missing /usr/bin/gdb gdb_backtrace gdb_backtrace_frames gdb_breakpoint gdb_breakpoint_registers; then
  tcase gdb_backtrace --grep '^Program received signal SIGSEGV, Segmentation fault\.$' -- \
    "${DO[@]}" /usr/bin/gdb -nx -batch -ex run -ex bt "$CRASHER"
  check_eq gdb_backtrace_frames "crash_here call_crash main" \
    "$(grep -E '^#[0-9]+ ' <<<"$TC_OUT" | grep -oE '(crash_here|call_crash|main) \(' | tr -d ' (' | tr '\n' ' ' | sed 's/ $//')" \
    "gdb -batch -ex run -ex bt crasher"
  # A software breakpoint (int3 written through ptrace), and the
  # registers there: crash_here's argument is the null pointer.
  tcase gdb_breakpoint --grep '^Breakpoint 1, (0x[0-9a-f]+ in )?crash_here ' -- \
    "${DO[@]}" /usr/bin/gdb -nx -batch -ex 'break crash_here' -ex run -ex 'print $rdi' -ex kill "$CRASHER"
  check_eq gdb_breakpoint_registers '$1 = 0' "$(grep -E '^\$1 = ' <<<"$TC_OUT")" "gdb: print \$rdi at the breakpoint"
fi

testlib_finish
