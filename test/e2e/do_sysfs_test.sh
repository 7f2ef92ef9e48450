#!/usr/bin/env bash
# End-to-end: `seedsc do` runs over the host's root file system, but its /sys
# is the sandbox's own (sentry/fs/sys), mounted read-only, as runsc do mounts
# its own: the host's sysfs would show the host's devices and settings, and
# reading some of its files changes the host (tracefs's trace_pipe consumes
# the host's trace buffer). No native reference: natively /sys is the host's.
#
#   bash test/e2e/do_sysfs_test.sh [--seedsc=PATH]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/testlib.sh"
testlib_init "$@"

BB=/bin/busybox
[[ -x "$BB" ]] || { echo "do_sysfs_test: $BB missing (apt-get install busybox-static)" >&2; exit 2; }
tcase sys_is_a_read_only_sysfs --grep '^sysfs /sys sysfs ro,' -- "${DO[@]}" "$BB" grep ' /sys ' /proc/mounts
tcase no_host_tracefs --out gone -- "${DO[@]}" "$BB" sh -c \
  '[ -e /sys/kernel/tracing ] || [ -e /sys/kernel/debug ] || echo gone'
tcase no_host_block_devices --out none -- "${DO[@]}" "$BB" sh -c \
  '[ -e /sys/block ] || [ -e /sys/module ] || echo none'
tcase cpus_still_known --grep '^0' -- "${DO[@]}" "$BB" cat /sys/devices/system/cpu/online

testlib_finish
