#!/usr/bin/env bash
# bench/strace_summary.py on a small --strace log: counts, handler time and
# the gap to the same thread's next call, per syscall; bad input is one line.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tool="$here/strace_summary.py"
t="$(mktemp -d)"
trap 'rm -rf "$t"' EXIT
fail=0
check() {  # check NAME EXPECTED ACTUAL
  if [[ "$2" == "$3" ]]; then echo "ok $1"; else echo "FAIL $1: want '$2', got '$3'"; fail=1; fi
}
# Thread 2: ioctl (1 us) returns at .000010, write enters .000030 (gap 20 us),
# write (5 us) returns at .000040, ioctl enters .000100 (gap 60 us), returns
# .000102 (2 us). Thread 3: one read of 1.5 ms, no next call.
cat >"$t/log" <<'LOG'
I1203 22:00:00.000000    1] something else
D1203 22:00:00.000009   10] [   2:   2] initdb E ioctl(4, 0x5401, 0x7ffc)
D1203 22:00:00.000010   10] [   2:   2] initdb X ioctl(4, 0x5401, 0x7ffc) = -25 (Inappropriate ioctl for device) (1.0us)
D1203 22:00:00.000020   11] [   3:   3] postgres E read(0, 0x5555, 8192)
D1203 22:00:00.000030   10] [   2:   2] initdb E write(4, 0x5555 "x", 1)
D1203 22:00:00.000040   10] [   2:   2] initdb X write(4, 0x5555 "x", 1) = 1 (0x1) (5.0us)
D1203 22:00:00.000100   10] [   2:   2] initdb E ioctl(4, 0x5401, 0x7ffc)
D1203 22:00:00.000102   10] [   2:   2] initdb X ioctl(4, 0x5401, 0x7ffc) = -25 (Inappropriate ioctl for device) (2.0us)
D1203 22:00:00.001520   11] [   3:   3] postgres X read(0, 0x5555, 8192) = 1 (0x1) (1.5ms)
LOG
out="$(python3 "$tool" "$t/log")"
echo "$out"
row() { awk -v n="$1" '$1 == n { $1 = ""; print substr($0, 2) }' <<<"$out"; }
check ioctl "2 0.000 1.5 0.000 10.0" "$(row ioctl)"
check write "1 0.000 5.0 0.000 60.0" "$(row write)"
check read "1 0.002 1500.0 0.000 0.0" "$(row read)"
check first_is_read read "$(sed -n 3p <<<"$out" | awk '{ print $1 }')"
check totals "log span 0.002 s, 4 calls" "$(head -1 <<<"$out" | cut -d, -f1-2)"
err="$(python3 "$tool" "$t/missing" 2>&1)"
check missing_file "strace_summary: $t/missing: No such file or directory" "$err"
echo junk >"$t/junk"
err="$(python3 "$tool" "$t/junk" 2>&1)"; rc=$?
check no_lines_rc 1 "$rc"
check no_lines "strace_summary: $t/junk: no --strace exit lines" "$err"
exit $fail
