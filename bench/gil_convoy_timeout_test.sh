#!/bin/bash
# A gil_convoy run that outlives --timeout ends on SIGTERM first, so that a
# runtime can remove its sandbox, and on SIGKILL what ignores that
# (issue 12, review finding: it was SIGKILLed at once). Two stand-ins for
# seedsc: one ends on SIGTERM and says so, one ignores it; both leave a
# `sleep` in their process group, which must be gone afterwards.
#
#   gil_convoy_timeout_test.sh GIL_CONVOY_SH
set -u
GIL="$(realpath "${1:?usage: gil_convoy_timeout_test.sh GIL_CONVOY_SH}")"
T="$(mktemp -d "${TEST_TMPDIR:-/tmp}/gilconvoy.XXXXXX")"
trap 'rm -rf "$T"' EXIT
export GIL_TEST_DIR="$T"
fail=0
bad() { echo "FAIL: $1"; fail=1; }

cat >"$T/ends_on_term" <<'SH'
#!/bin/bash
trap 'echo TERM >"$GIL_TEST_DIR/term"; exit 0' TERM
sleep 1000 &
echo $! >"$GIL_TEST_DIR/sleep.ends_on_term"
wait
SH
cat >"$T/ignores_term" <<'SH'
#!/bin/bash
trap '' TERM
sleep 1000 &
echo $! >"$GIL_TEST_DIR/sleep.ignores_term"
wait
SH
chmod +x "$T/ends_on_term" "$T/ignores_term"

start=$SECONDS
bash "$GIL" --smoke --timeout=2 --platforms=systrap --runsc= \
  --seedsc="$T/ends_on_term" --seedsc-base="$T/ignores_term" >"$T/out" 2>&1
rc=$?
took=$((SECONDS - start))
cat "$T/out"
((rc == 1)) || bad "gil_convoy exited $rc, not 1 (two runs timed out)"
for col in seedsc-systrap base-systrap; do
  grep -q "^gil_convoy: $col took more than 2 s" "$T/out" || bad "$col did not time out"
done
[[ "$(cat "$T/term" 2>/dev/null)" == TERM ]] ||
  bad "the run that timed out got no SIGTERM before it was killed"
for f in "$T"/sleep.*; do
  pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    bad "${f##*/sleep.}'s sleep ($pid) outlived its run"
    kill -KILL "$pid"
  fi
done
[[ -f "$T/sleep.ignores_term" ]] || bad "the stand-in that ignores SIGTERM never ran"
# The one that ignores SIGTERM ends by SIGKILL after the grace (10 s).
((took < 60)) || bad "the runs took $took s"
((fail == 0)) && echo "PASS: a timed-out run gets SIGTERM, then SIGKILL ($took s)"
exit $fail
