#!/usr/bin/env bash
# Overlay copy-up of host files that never end (issue 16: a 30-minute root
# trinity run hung a task in a copy-up that read the host's
# /sys/kernel/tracing/per_cpu/cpu0/trace_pipe_raw to its end, holding the
# VFS's lock, and the sandbox never ended).
#
#   - A host pseudo file system mounted below the sandbox's root (here
#     tracefs, mounted on a host directory in a mount namespace of the
#     test's own) shows as an empty directory, as a mount point does in a
#     lower layer of Linux's overlayfs: open(O_WRONLY|O_APPEND), chmod,
#     utimes and rename of its trace_pipe answer ENOENT at once.
#   - The same for the host's /proc and /sys that a root guest uncovers by
#     unmounting the sandbox's own: no host process shows, /proc/1/cmdline
#     is ENOENT (natively, in a mount namespace of its own, `umount /proc`
#     leaves the empty directory of the root file system).
#   - A sparse host file copies up sparse, st_size bytes at most
#     (ovl_copy_up_data()): a chmod of a 1 GiB file holding 4 bytes of data
#     is quick and its copy allocates next to nothing.
# Each guest operation prints "OP name result seconds"; the run has a
# deadline, so a hang fails the case instead of the test run.
#
#   copy_up_test.sh --seedsc=PATH [--platform=NAME]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/../e2e/testlib.sh"  # check_eq, check_ok, testlib_finish (no testlib_init)
testlib_seedsc_and_platform "$@"  # sets seedsc, platform
tmp="$(mktemp -d /tmp/copy-up-test.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp"

# The guest's operations on a path, each timed.
ops='
import errno, os, sys, time
def op(name, f):
    t0 = time.monotonic()
    try:
        f()
        r = "ok"
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    print("OP %s %s %.1f" % (name, r, time.monotonic() - t0), flush=True)
p = sys.argv[1]
op("open_wronly_append", lambda: os.close(os.open(p, os.O_WRONLY | os.O_APPEND)))
op("chmod", lambda: os.chmod(p, 0o600))
op("utimes", lambda: os.utime(p, (0, 0)))
op("rename", lambda: os.rename(p, p + ".moved"))
'
# check_ops LABEL OUTPUT WANT: every operation answered WANT within 10 s.
check_ops() {
  local label="$1" out="$2" want="$3" name line result secs
  for name in open_wronly_append chmod utimes rename; do
    line="$(grep -a "^OP $name " <<<"$out" | head -1)"
    read -r _ _ result secs <<<"$line"
    check_eq "$label: $name answers $want" "$want" "${result:-no answer (hung?)}" \
      "$name in the guest (${secs:-?} s)"
    check_ok "$label: $name returns promptly" \
      "$([[ -n "$secs" ]] && awk -v s="$secs" 'BEGIN { print (s < 10) ? 1 : 0 }' || echo 0)" \
      "$name in the guest" "under 10 s" "${secs:-no answer} s"
  done
}
run_do() {  # CWD CMD...: seedsc do with a deadline; stdout and stderr
  local cwd="$1"
  shift
  timeout -k 5 60 "$seedsc" "--platform=$platform" do "--cwd=$cwd" -- "$@" 2>&1
}

echo "== a host tracefs below the root"
mkdir -p "$tmp/tr"
if unshare -m --propagation private true 2>/dev/null &&
   unshare -m --propagation private sh -c "mount -t tracefs nodev '$tmp/tr' && test -e '$tmp/tr/trace_pipe'"; then
  # seedsc runs inside the namespace that has the mount; the mount ends with it.
  out="$(timeout -k 5 70 unshare -m --propagation private sh -c '
    mount -t tracefs nodev "$1/tr" || exit 97
    shift
    exec timeout -k 5 60 "$@"' sh "$tmp" "$seedsc" "--platform=$platform" do "--cwd=$tmp" -- \
    /bin/sh -c 'echo "LS $(ls -A tr | wc -l)"; exec python3 -c "$1" tr/trace_pipe' sh "$ops" 2>&1)"
  check_eq "tracefs: the mount shows empty" "LS 0" "$(grep -a '^LS ' <<<"$out" || echo "no answer: $out")" \
    "ls -A tr in the guest (tracefs mounted there on the host)"
  check_ops "tracefs trace_pipe" "$out" ENOENT
else
  echo "SKIP tracefs case: cannot mount tracefs in a mount namespace here (not root, or no tracefs)"
fi

echo "== the host's /proc and /sys under the sandbox's own"
out="$(run_do / /bin/sh -c '
  umount /proc || echo "UMOUNT-PROC-FAILED"
  echo "PROC $(ls -A /proc | wc -l)"
  if cat /proc/1/cmdline >/dev/null 2>&1; then echo "CMDLINE readable"; else echo "CMDLINE absent"; fi
  umount /sys || echo "UMOUNT-SYS-FAILED"
  echo "SYS $(ls -A /sys | wc -l)"
  exec python3 -c "$1" /sys/kernel/tracing/trace_pipe' sh "$ops")"
check_eq "host /proc: nothing shows" "PROC 0" "$(grep -a '^PROC ' <<<"$out" || echo "no answer: $out")" \
  "ls -A /proc in the guest after umount /proc"
check_eq "host /proc/1/cmdline: absent" "CMDLINE absent" "$(grep -a '^CMDLINE ' <<<"$out" || echo "no answer")" \
  "cat /proc/1/cmdline in the guest after umount /proc"
check_eq "host /sys: nothing shows" "SYS 0" "$(grep -a '^SYS ' <<<"$out" || echo "no answer")" \
  "ls -A /sys in the guest after umount /sys"
check_ops "host /sys/kernel/tracing/trace_pipe" "$out" ENOENT

echo "== a sparse host file copies up sparse"
truncate -s 1G "$tmp/sparse"
printf data | dd of="$tmp/sparse" bs=1 seek=$((512 << 20)) conv=notrunc status=none
chmod 0644 "$tmp/sparse"
out="$(run_do "$tmp" python3 -c '
import os, time
t0 = time.monotonic()
os.chmod("sparse", 0o600)
st = os.stat("sparse")
with open("sparse", "rb") as f:
    f.seek(512 << 20)
    data = f.read(4)
print("SPARSE size=%d blocks_small=%d data=%s secs=%.1f" % (st.st_size, st.st_blocks < 2048,
      data.decode(errors="replace"), time.monotonic() - t0))')"
line="$(grep -a '^SPARSE ' <<<"$out" || echo "no answer: $out")"
check_eq "sparse copy-up: size, holes and data kept" "size=1073741824 blocks_small=1 data=data" \
  "$(sed 's/^SPARSE //; s/ secs=.*//' <<<"$line")" "chmod of a 1 GiB sparse host file, then stat and read"
secs="$(sed -n 's/.* secs=//p' <<<"$line")"
check_ok "sparse copy-up: quick" "$([[ -n "$secs" ]] && awk -v s="$secs" 'BEGIN { print (s < 10) ? 1 : 0 }' || echo 0)" \
  "chmod of a 1 GiB sparse host file" "under 10 s" "${secs:-no answer} s"
check_eq "the host's sparse file is unchanged" "644 1073741824" "$(stat -c '%a %s' "$tmp/sparse")" \
  "stat of the host file"
testlib_finish
