#!/usr/bin/env bash
# End-to-end: the terminal the sandbox runs on (the sentry's host stdio
# passthrough) answers TIOCGSID/TIOCGPGRP and takes TIOCSPGRP in the
# caller's pid namespace, as a pty inside does (issue 13). script(1) gives
# the sandbox a terminal; host_tty_ids.c checks from a pid namespace and
# from outside it.
#
#   bash test/e2e/host_tty_test.sh --prog=PATH/host_tty_ids [--seedsc=PATH]
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test/e2e/testlib.sh
source "$here/testlib.sh"
testlib_init "$@"

PROG="$(realpath "${TESTLIB_ARGS[prog]:-$here/../../bazel-bin/test/e2e/host_tty_ids}")"
[[ -x "$PROG" ]] || { echo "host_tty_test: no host_tty_ids at $PROG (--prog=PATH)" >&2; exit 2; }
command -v script >/dev/null || { echo "host_tty_test: needs script(1) (util-linux)" >&2; exit 2; }
cd "$TESTLIB_TMP" || exit 2

# The whole command line, quoted for script's shell.
cmd="$(printf '%q ' "${DO[@]}" "$PROG")"
tcase ids_in_the_callers_pid_namespace --grep '^ok' -- script -q -e -c "$cmd" /dev/null

testlib_finish
