#!/usr/bin/env bash
# seedsc on systrap with the stub's path for hosts whose kernel keeps user
# space from FSGSBASE (SEEDVISOR_SYSTRAP_FSGSBASE=0: the guest's FS/GS bases
# through arch_prctl, no syscall-site patching; platform/systrap/
# systrap_layout.h UserFsgsbase), on any host. Finds the built seedsc as
# seedsc_ptrace.sh does.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for s in "${TEST_SRCDIR:-/nonexistent}/${TEST_WORKSPACE:-seedvisor}/runsc/seedsc" \
         "$here/../../runsc/seedsc" "$here/../../bazel-bin/runsc/seedsc"; do
  [[ -x "$s" ]] && SEEDVISOR_SYSTRAP_FSGSBASE=0 exec "$s" --platform=systrap "$@"
done
echo "seedsc_nofsgsbase.sh: no built seedsc found (bazel build //runsc:seedsc)" >&2
exit 127
