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
check_eq() {  # name want got
  if [[ "$2" == "$3" ]]; then ok "$1"; else
    bad "$1"; echo "  want: $(printf '%q' "$2")"; echo "  got:  $(printf '%q' "$3")"; fi
}
# make_ns_pair NA NB IPA IPB: two new namespaces joined by a veth (eth0 in
# NA with IPA/24, peer0 in NB with IPB/24, both up, NA's default route via
# IPB); del_ns_pair NA NB removes them (and with them the veth).
make_ns_pair() {
  ip netns add "$1" && ip netns add "$2" || return 1
  ip -n "$1" link add eth0 type veth peer name peer0 netns "$2" || return 1
  ip -n "$1" link set lo up && ip -n "$2" link set lo up &&
    ip -n "$1" addr add "$3/24" dev eth0 && ip -n "$2" addr add "$4/24" dev peer0 &&
    ip -n "$1" link set eth0 up && ip -n "$2" link set peer0 up &&
    ip -n "$1" route add default via "$4"
}
del_ns_pair() {
  ip netns del "$1" 2>/dev/null
  ip netns del "$2" 2>/dev/null
}
# Prints the totals and fails the test if anything failed.
e2e_done() {
  echo "$pass passed, $fail failed"
  ((fail == 0))
}
