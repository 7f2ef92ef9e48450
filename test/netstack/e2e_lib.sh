# What the netstack end-to-end tests share (sourced): PASS/FAIL counting,
# the tool check, a temp dir $T, and an EXIT trap that kills the pids the
# test started (in $pids), runs the test's own `extra_cleanup` if it
# defines one, and removes $T.
set -u
pass=0 fail=0
pids=()
ok() { echo "PASS: $1"; pass=$((pass + 1)); }
bad() { echo "FAIL: $1"; fail=$((fail + 1)); }
need_tools() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing"; exit 1; }
  done
}
T="$(mktemp -d /tmp/netstack_e2e.XXXXXX)"
e2e_cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  if declare -F extra_cleanup >/dev/null; then extra_cleanup; fi
  rm -rf "$T"
}
trap e2e_cleanup EXIT
# Prints the totals and fails the test if anything failed.
e2e_done() {
  echo "$pass passed, $fail failed"
  ((fail == 0))
}
