#!/usr/bin/env bash
# gVisor's runsc behind seedsc's command line, to check the e2e tests
# against the design we re-implement:
#
#   runsc_as_seedsc.sh [GLOBAL FLAGS] do [--] CMD ARGS...
#
# Adds --network=none; --strace without --debug-log logs to stderr (runsc
# logs nowhere by default). Needs root.
set -uo pipefail
runsc="${RUNSC:-runsc}"
globals=(--network=none)
strace=0 has_log=0
while (($#)) && [[ "$1" != do ]]; do
  case "$1" in
    --strace) strace=1 ;;
    --debug-log=*|--debug-log) has_log=1 ;;
  esac
  globals+=("$1")
  shift
done
((strace && !has_log)) && globals+=(--debug-log=/dev/stderr)
# runsc logs unsupported syscalls only with --debug.
((has_log)) && globals+=(--debug)
[[ "${1:-}" == do ]] || { echo "runsc_as_seedsc: expected 'do'" >&2; exit 2; }
shift
exec "$runsc" "${globals[@]}" do "$@"
