# A small test framework for shell end-to-end tests of seedsc. Source it:
#
#   source "$(dirname "$0")/../e2e/testlib.sh"
#   testlib_init "$@"                  # --seedsc=PATH, --only=REGEX, and
#                                      # --k=v into TESTLIB_ARGS[k]
#   KNOWN_FAILING[exit_code]="seedsc drops the exit status"   # optional
#   tcase exit_code --status 7 -- "${DO[@]}" /bin/busybox sh -c 'exit 7'
#   check_eq host_unchanged "orig" "$(cat "$f")" "cat $f"
#   testlib_finish                     # last line: "N passed, N failed"
#
# seedsc is found from --seedsc=PATH, else $SEEDSC, else the repo's
# bazel-bin/runsc/seedsc. It may be any program that takes seedsc's command
# line; test/e2e/native_as_seedsc.sh (host kernel + overlayfs) and
# runsc_as_seedsc.sh (gVisor) are references a correct test passes against.
#
# Every case runs under `timeout 20s` (60s with --platform=kvm or under the
# runsc reference) with stdin
# from /dev/null unless given, and prints PASS/FAIL with the command, the
# expected and the actual result.
# A case named in KNOWN_FAILING prints "SKIP ... (known failing: reason)"
# instead of running, unless RUN_KNOWN_FAILING=1.

set -uo pipefail

declare -A KNOWN_FAILING=()
declare -A TESTLIB_ARGS=()  # other --name=value arguments, for the script
TESTLIB_PASSED=0
TESTLIB_FAILED=0
TESTLIB_SKIPPED=0
TESTLIB_ONLY=""
_TESTLIB_ENV_TIMEOUT="${TESTLIB_TIMEOUT:-}"
TESTLIB_TIMEOUT="${TESTLIB_TIMEOUT:-20s}"
_TESTLIB_ENV_SEEDSC="${SEEDSC:-}"
SEEDSC=""
DO=()

# On --platform=kvm where /dev/kvm is unusable: one "SKIPPED on kvm" line
# with the platform's reason, and exit 0 (test/kvm_skip.sh). testlib_init
# does it; scripts that parse their own flags call it themselves.
testlib_skip_unusable_kvm() {  # SEEDSC PLATFORM
  [[ "$2" == kvm ]] || return 0
  # shellcheck source=test/kvm_skip.sh
  source "$(dirname "${BASH_SOURCE[0]}")/../kvm_skip.sh"
  kvm_skip_unless_usable "$1" "$(basename "$0")"
}

# For a script that runs seedsc itself and takes only `--seedsc=PATH
# [--platform=NAME]` (no testlib_init): sets `seedsc` (its real path) and
# `platform` (systrap unless given). Another argument, or no executable
# seedsc, exits 2 naming the script; an unusable kvm skips as above.
testlib_seedsc_and_platform() {  # "$@"
  local me arg
  me="$(basename "$0" .sh)"
  seedsc="" platform=systrap
  for arg in "$@"; do
    case "$arg" in
      --seedsc=*) seedsc="${arg#*=}" ;;
      --platform=*) platform="${arg#*=}" ;;
      *) echo "$me: unknown argument '$arg'" >&2; exit 2 ;;
    esac
  done
  [[ -x "$seedsc" ]] || { echo "$me: need --seedsc" >&2; exit 2; }
  testlib_skip_unusable_kvm "$seedsc" "$platform"
  seedsc="$(realpath "$seedsc")"
}

testlib_init() {
  local arg name
  for arg in "$@"; do
    case "$arg" in
      --seedsc=*) SEEDSC="${arg#*=}" ;;
      --only=*) TESTLIB_ONLY="${arg#*=}" ;;
      --*=*) name="${arg%%=*}"; TESTLIB_ARGS[${name#--}]="${arg#*=}" ;;
      *) echo "testlib: unknown argument '$arg'" >&2; exit 2 ;;
    esac
  done
  if [[ -z "$SEEDSC" ]]; then
    local repo
    repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    SEEDSC="${_TESTLIB_ENV_SEEDSC:-$repo/bazel-bin/runsc/seedsc}"
  fi
  if [[ ! -x "$SEEDSC" ]]; then
    echo "testlib: seedsc '$SEEDSC' is not an executable (use --seedsc=PATH or SEEDSC=PATH)" >&2
    exit 2
  fi
  SEEDSC="$(realpath "$SEEDSC")"
  if [[ "${TESTLIB_ARGS[platform]:-}" == kvm ]]; then
    # --platform=kvm (SEEDSC is seedsc_kvm.sh).
    testlib_skip_unusable_kvm "$SEEDSC" kvm
    # The per-case hang guard, not a limit on what a case checks: on kvm
    # every guest fork and exec makes a VM and its vCPUs (≈ 75-100 ms at
    # load 20 here), and busybox's exec_loop_200 took 15-20 s alone.
    [[ -n "${_TESTLIB_ENV_TIMEOUT:-}" ]] || TESTLIB_TIMEOUT=60s
  fi
  if [[ "$(basename "$SEEDSC")" == runsc_as_seedsc.sh ]]; then
    # The reference run under Debian's runsc (ptrace): its speed is the
    # competitor's, not what a case checks; exec_loop_200 took over 20 s
    # there at load 22 (CI at 0de1898).
    [[ -n "${_TESTLIB_ENV_TIMEOUT:-}" ]] || TESTLIB_TIMEOUT=60s
  fi
  DO=("$SEEDSC" do --)
  TESTLIB_TMP="$(mktemp -d "${TEST_TMPDIR:-/tmp}/e2e.XXXXXX")"
  trap 'rm -rf "$TESTLIB_TMP"' EXIT
  echo "testlib: seedsc is $SEEDSC"
}

# Shell-quotes a command for display.
_testlib_show() {
  local out="" a
  for a in "$@"; do out+="$(printf '%q' "$a") "; done
  printf '%s' "${out% }"
}

# Shortens multi-line text for one-line display.
_testlib_short() {
  local s="$1" max="${2:-300}"
  s="${s//\\/\\\\}"
  s="${s//$'\n'/\\n}"
  ((${#s} > max)) && s="${s:0:max}..."
  printf '%s' "$s"
}

# Returns 0 (and prints SKIP) when the case should not run.
_testlib_skip() {
  local name="$1" cmd="$2"
  if [[ -n "$TESTLIB_ONLY" && ! "$name" =~ $TESTLIB_ONLY ]]; then return 0; fi
  if [[ -n "${KNOWN_FAILING[$name]:-}" && "${RUN_KNOWN_FAILING:-0}" != 1 ]]; then
    echo "SKIP $name (known failing: ${KNOWN_FAILING[$name]})"
    echo "     command: $cmd"
    TESTLIB_SKIPPED=$((TESTLIB_SKIPPED + 1))
    return 0
  fi
  return 1
}

_testlib_report() {  # name ok cmd expected actual [details]
  local name="$1" ok="$2" cmd="$3" expected="$4" actual="$5" details="${6:-}"
  if ((ok)); then
    TESTLIB_PASSED=$((TESTLIB_PASSED + 1))
    echo "PASS $name"
    local c="$cmd"
    ((${#c} > 400)) && c="${c:0:400}..."
    echo "     command:  $c"
    echo "     expected: $(_testlib_short "$expected")"
    echo "     actual:   $(_testlib_short "$actual")"
  else
    TESTLIB_FAILED=$((TESTLIB_FAILED + 1))
    echo "FAIL $name"
    echo "     command:  $cmd"
    echo "     expected: $(_testlib_short "$expected" 2000)"
    echo "     actual:   $(_testlib_short "$actual" 2000)"
    [[ -n "$details" ]] && sed 's/^/     | /' <<<"$details" | head -40
  fi
}

# tcase NAME [--out STR] [--grep ERE] [--status N|any] [--stdin STR] -- CMD...
#   --out    stdout must equal STR (trailing newlines dropped, as in $(...))
#   --grep   stdout+stderr must match the extended regex ERE (grep -E)
#   --nogrep stdout+stderr must not match ERE
#   --status exit status must be N (default 0); "any" accepts every status
#   --stdin  feed STR (no added newline) to the command's stdin
# After the call TC_OUT, TC_ERR and TC_STATUS hold what the command did.
tcase() {
  local name="$1"; shift
  local want_out="" has_out=0 want_re="" no_re="" want_status=0 stdin="" has_stdin=0
  while (($#)) && [[ "$1" != "--" ]]; do
    case "$1" in
      --out) want_out="$2"; has_out=1; shift 2 ;;
      --grep) want_re="$2"; shift 2 ;;
      --nogrep) no_re="$2"; shift 2 ;;
      --status) want_status="$2"; shift 2 ;;
      --stdin) stdin="$2"; has_stdin=1; shift 2 ;;
      *) echo "tcase $name: unknown option '$1'" >&2; exit 2 ;;
    esac
  done
  shift  # --
  local cmd
  cmd="$(_testlib_show "$@")"
  ((has_stdin)) && cmd="printf %s $(printf '%q' "$stdin") | $cmd"
  TC_OUT="" TC_ERR="" TC_STATUS=""
  _testlib_skip "$name" "$cmd" && return 0

  local of="$TESTLIB_TMP/out" ef="$TESTLIB_TMP/err"
  if ((has_stdin)); then
    printf '%s' "$stdin" | timeout -k 5s "$TESTLIB_TIMEOUT" "$@" >"$of" 2>"$ef"
    TC_STATUS=${PIPESTATUS[1]}
  else
    timeout -k 5s "$TESTLIB_TIMEOUT" "$@" </dev/null >"$of" 2>"$ef"
    TC_STATUS=$?
  fi
  TC_OUT="$(cat "$of")"
  TC_ERR="$(cat "$ef")"

  local ok=1 expected=() actual=()
  if [[ "$want_status" != any ]]; then
    expected+=("exit $want_status")
    actual+=("exit $TC_STATUS")
    [[ "$TC_STATUS" == "$want_status" ]] || ok=0
  fi
  if ((has_out)); then
    expected+=("stdout '$want_out'")
    actual+=("stdout '$TC_OUT'")
    [[ "$TC_OUT" == "$want_out" ]] || ok=0
  fi
  if [[ -n "$want_re" ]]; then
    expected+=("output matching /$want_re/")
    if grep -qE -- "$want_re" "$of" "$ef"; then
      actual+=("matched: $(grep -hE -m1 -- "$want_re" "$of" "$ef" | head -1)")
    else
      actual+=("no line matches")
      ok=0
    fi
  fi
  if [[ -n "$no_re" ]]; then
    expected+=("no output matching /$no_re/")
    if grep -qE -- "$no_re" "$of" "$ef"; then
      actual+=("matched: $(grep -hE -m1 -- "$no_re" "$of" "$ef" | head -1)")
      ok=0
    fi
  fi
  local details=""
  ((ok)) || details="stderr (last lines):"$'\n'"$(tail -15 "$ef")"
  [[ "$TC_STATUS" == 124 ]] && details="TIMED OUT after $TESTLIB_TIMEOUT"$'\n'"$details"
  local IFS=';'
  _testlib_report "$name" "$ok" "$cmd" "${expected[*]}" "${actual[*]}" "$details"
}

# check_eq NAME EXPECTED ACTUAL [WHAT]: a host-side check (no command run).
check_eq() {
  local name="$1" expected="$2" actual="$3" what="${4:-host check}"
  _testlib_skip "$name" "$what" && return 0
  local ok=0
  [[ "$expected" == "$actual" ]] && ok=1
  _testlib_report "$name" "$ok" "$what" "$expected" "$actual"
}

# check_ok NAME OK WHAT EXPECTED ACTUAL: a case decided by the caller (OK is
# 1 or 0), e.g. a verdict the guest printed.
check_ok() {
  local name="$1" ok="$2" what="$3" expected="$4" actual="$5"
  _testlib_skip "$name" "$what" && return 0
  _testlib_report "$name" "$ok" "$what" "$expected" "$actual"
}

# delete_all_containers RUNTIME ROOT: a test's clean-up. Deletes (--force)
# every container that RUNTIME (seedsc, runc: any with `list --quiet` and
# `delete --force`) lists under ROOT; nothing for an empty RUNTIME.
delete_all_containers() {
  [[ -n "$1" ]] || return 0
  local id
  for id in $("$1" --root "$2" list --quiet 2>/dev/null); do
    "$1" --root "$2" delete --force "$id" >/dev/null 2>&1
  done
}

# runc_own_cgroups BUNDLE...: gives each runc bundle's container cgroups
# of this test run's own (linux.cgroupsPath "/seedvisor-test-PID-NAME",
# NAME the bundle directory's). runc's default is "/<container id>" in every
# hierarchy, which two tests running at once share when both name a
# container alike: one test's `runc delete --force a` thawed the other's
# paused "a" (pod_pause_delete_test beside pod_pidns_test in CI). runc
# removes the cgroup when it deletes the container.
runc_own_cgroups() {
  local b
  for b in "$@"; do
    python3 - "$b/config.json" "/seedvisor-test-$$-$(basename "$b")" <<'PY' || return 1
import json, sys
cfg, path = sys.argv[1], sys.argv[2]
c = json.load(open(cfg))
c.setdefault("linux", {})["cgroupsPath"] = path
json.dump(c, open(cfg, "w"), indent=1)
PY
  done
}

testlib_finish() {
  echo
  ((TESTLIB_SKIPPED)) && echo "$TESTLIB_SKIPPED skipped (known failing, see SKIP lines)"
  echo "$TESTLIB_PASSED passed, $TESTLIB_FAILED failed"
  ((TESTLIB_FAILED == 0))
}
