#!/usr/bin/env bash
# seedsc on the kvm platform, for tests that take one seedsc path
# (--seedsc=PATH): busybox_kvm_test and hostile_kvm_test (with
# --platform=kvm, which makes testlib skip where /dev/kvm is unusable).
# Finds the built seedsc in the test's runfiles, else in the source tree's
# bazel-bin.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for s in "${TEST_SRCDIR:-/nonexistent}/${TEST_WORKSPACE:-seedvisor}/runsc/seedsc" \
         "$here/../../runsc/seedsc" "$here/../../bazel-bin/runsc/seedsc"; do
  [[ -x "$s" ]] && exec "$s" --platform=kvm "$@"
done
echo "seedsc_kvm.sh: no built seedsc found (bazel build //runsc:seedsc)" >&2
exit 127
