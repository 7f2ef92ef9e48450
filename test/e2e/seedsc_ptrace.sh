#!/usr/bin/env bash
# seedsc on the ptrace platform, for tests that take one seedsc path
# (--seedsc=PATH): the default platform is systrap, and the e2e and hostile
# tests run on both. Finds the built seedsc in the test's runfiles, else in
# the source tree's bazel-bin.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for s in "${TEST_SRCDIR:-/nonexistent}/${TEST_WORKSPACE:-seedvisor}/runsc/seedsc" \
         "$here/../../runsc/seedsc" "$here/../../bazel-bin/runsc/seedsc"; do
  [[ -x "$s" ]] && exec "$s" --platform=ptrace "$@"
done
echo "seedsc_ptrace.sh: no built seedsc found (bazel build //runsc:seedsc)" >&2
exit 127
