#!/usr/bin/env bash
# Builds seedsc (bazel-bin/runsc/seedsc) and shows it running a sandbox.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-deps.sh

SEEDSC=bazel-bin/runsc/seedsc

# ---------------------------------------------------------------------------
# PLACEHOLDER for the sentry team: replace this body with the real demo
# (e.g. a busybox bundle run under "$SEEDSC run"). It runs after seedsc built.
run_demo() {
  echo "demo: TODO (sentry team) - seedsc is built at $SEEDSC"
  "$SEEDSC" --help || true
}
# ---------------------------------------------------------------------------

if ! bazel query //runsc:seedsc >/dev/null 2>&1; then
  echo "demo: //runsc:seedsc does not exist yet; nothing to demo."
  exit 0
fi
bazel build //runsc:seedsc
run_demo
