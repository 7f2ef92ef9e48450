#!/usr/bin/env bash
# The vCPU pool's lock rules (ABSL_GUARDED_BY, ABSL_EXCLUSIVE_LOCKS_REQUIRED,
# ABSL_LOCKS_EXCLUDED in kvm_address_space.h) checked by clang's
# -Wthread-safety: the build uses gcc, which ignores them. Each argument is a
# source file (a runfile, resolved to the source tree, where its includes
# are); any error clang reports fails the test, and so does a host without
# clang++ (scripts/install-deps.sh installs it): a check that did not run
# must not pass.
set -uo pipefail
if ! command -v clang++ >/dev/null; then
  echo "FAIL: no clang++ on this host (scripts/install-deps.sh installs clang): the"
  echo "thread-safety annotations were not checked"
  exit 1
fi
fail=0
for f in "$@"; do
  src="$(readlink -f "$f")"
  root="${src%/platform/kvm/*}"
  if ! clang++ -std=c++20 -fsyntax-only -Wthread-safety -Wthread-safety-beta \
      -Werror=thread-safety -Werror=thread-safety-beta -I"$root" "$src"; then
    echo "FAIL: $f: clang++ -Wthread-safety reported errors (above)"
    fail=1
  fi
done
((fail == 0)) && echo "PASS: $# files hold to their lock annotations"
exit "$fail"
