#!/usr/bin/env bash
# Runs one syscall conformance test binary, natively or inside the sandbox.
# Generated targets call it (see defs.bzl); by hand, from the workspace root:
#
#   test/syscalls/run_test.sh --binary=bazel-bin/test/syscalls/file_bin
#   test/syscalls/run_test.sh --binary=bazel-bin/test/syscalls/init_signal_bin --as-init
#   test/syscalls/run_test.sh --binary=bazel-bin/test/syscalls/stat_xdev_bin --host-tmpfs=2
#   test/syscalls/run_test.sh --binary=bazel-bin/test/syscalls/file_bin \
#       --seedsc=bazel-bin/runsc/seedsc --platform=ptrace -- --gtest_filter='Open*'
#
# Arguments after "--" go to the test binary. The binary's output goes to
# stdout (Bazel's test.log). Natively gtest writes its XML report to
# $XML_OUTPUT_FILE itself (gtest reads that variable); in the sandbox it
# writes it under $TEST_TMPDIR and we copy it out if it reached the host
# (otherwise Bazel writes its own report from the exit status).
#
# --host-tmpfs=N runs the binary (natively or the sandbox) in a mount
# namespace of its own (needs root) in which N fresh tmpfs instances are
# mounted at $TEST_TMPDIR/host_tmpfs/0 .. N-1, each holding a file `f`
# (its number and a newline) and a directory `d`: objects of other host
# file systems than the root's, whose inode numbers repeat.
#
# --host-volume makes the directory $TEST_TMPDIR/host_volume and names it
# in $TEST_HOST_VOLUME; in the sandbox it is a writable bind of that host
# directory (seedsc do --volume), as a container's volume, where the rest
# of $TEST_TMPDIR is the sandbox's overlay.
set -uo pipefail

binary="" seedsc="" platform="" network="" patch="" net_raw="" as_init=0 host_tmpfs=0
host_volume=0
while (($#)); do
  case "$1" in
    --binary=*) binary="${1#*=}" ;;
    --seedsc=*) seedsc="${1#*=}" ;;
    --platform=*) platform="${1#*=}" ;;
    --network=*) network="${1#*=}" ;;
    --systrap-patch | --systrap-patch=*) patch="$1" ;;
    --net-raw) net_raw="$1" ;;  # seedsc --net-raw: raw sockets for CAP_NET_RAW
    --as-init) as_init=1 ;;
    --host-tmpfs=*) host_tmpfs="${1#*=}" ;;
    --host-volume) host_volume=1 ;;
    --) shift; break ;;
    *) echo "run_test.sh: unknown argument '$1' (test arguments go after --)" >&2; exit 2 ;;
  esac
  shift
done
if [[ -z "$binary" ]]; then
  echo "run_test.sh: --binary=PATH is required" >&2
  exit 2
fi
if [[ -n "$seedsc" && -z "$platform" ]] || [[ -z "$seedsc" && -n "$platform" ]]; then
  echo "run_test.sh: --seedsc and --platform go together" >&2
  exit 2
fi
if [[ ! -x "$binary" ]]; then
  echo "run_test.sh: test binary '$binary' not found or not executable (cwd $PWD)" >&2
  exit 2
fi
# Absolute paths: the sandbox may start the test in another directory.
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"

# Outside Bazel (by hand) there is no TEST_TMPDIR: make one.
if [[ -z "${TEST_TMPDIR:-}" ]]; then
  TEST_TMPDIR="$(mktemp -d -t syscall_test.XXXXXX)"
  trap 'rm -rf "$TEST_TMPDIR"' EXIT
fi
export TEST_TMPDIR
if ((host_volume)); then
  export TEST_HOST_VOLUME="$TEST_TMPDIR/host_volume"
  mkdir -p "$TEST_HOST_VOLUME"
fi

if [[ -z "$seedsc" ]] && ((as_init)); then
  # The binary must be pid 1 of its pid namespace, as it is in the sandbox
  # (needs root; /proc is the new namespace's).
  where="natively as pid 1 of a new pid namespace"
  cmd=(unshare --pid --fork --kill-child --mount-proc "$binary" "$@")
elif [[ -z "$seedsc" ]]; then
  where="natively"
  cmd=("$binary" "$@")
else
  where="in the sandbox (seedsc --platform=$platform${network:+ --network=$network}"
  where+="${patch:+ $patch}${net_raw:+ $net_raw}${TEST_HOST_VOLUME:+ --volume})"
  seedsc="$(cd "$(dirname "$seedsc")" && pwd)/$(basename "$seedsc")"
  # Files the test binary would write for Bazel live outside the sandbox:
  # do not let gtest write them from inside (it aborts if it cannot open
  # them). Pass the test filter as a flag rather than through the
  # environment, so it works whatever environment the sandbox passes on.
  sandbox_xml="$TEST_TMPDIR/gtest_sandbox.xml"
  rm -f "$sandbox_xml"
  args=("--gtest_output=xml:$sandbox_xml")
  if [[ -n "${TESTBRIDGE_TEST_ONLY:-}" ]]; then
    args+=("--gtest_filter=$TESTBRIDGE_TEST_ONLY")
  fi
  # kvm needs a usable /dev/kvm: where there is none, say so and skip (the
  # platform's own one-line reason), never pass silently.
  if [[ "$platform" == kvm ]]; then
    source "$(dirname "$0")/../kvm_skip.sh"
    kvm_skip_unless_usable "$seedsc" "run_test.sh: $(basename "$binary")"
  fi
  # --network=sandbox: the sandbox's stack with loopback only, no veth
  # (tests run side by side; each veth would want the same subnet).
  do_flags=()
  [[ "$network" == sandbox ]] && do_flags=(--veth=false)
  ((host_volume)) && do_flags+=("--volume=$TEST_HOST_VOLUME:$TEST_HOST_VOLUME")
  # The sandbox's uname is its own: the host's for cases that need a newer
  # host (test_util.h SandboxHostBefore).
  export SEEDVISOR_HOST_RELEASE="$(uname -r)"
  cmd=(env -u XML_OUTPUT_FILE -u TEST_PREMATURE_EXIT_FILE -u GTEST_SHARD_STATUS_FILE
       -u TEST_SHARD_STATUS_FILE -u TESTBRIDGE_TEST_ONLY
       "$seedsc" "--platform=$platform" ${network:+"--network=$network"} ${patch:+"$patch"}
       ${net_raw:+"$net_raw"} do "${do_flags[@]}" "$binary" "${args[@]}" "$@")
fi

if ((host_tmpfs > 0)); then
  where="$where, with $host_tmpfs host tmpfs mounts under \$TEST_TMPDIR/host_tmpfs"
  mkdir -p "$TEST_TMPDIR/host_tmpfs"
  # shellcheck disable=SC2016
  setup='for ((i = 0; i < N; i++)); do
      m="$TEST_TMPDIR/host_tmpfs/$i"
      mkdir -p "$m" && mount -t tmpfs "tmpfs$i" "$m" && echo "$i" >"$m/f" && mkdir "$m/d" || exit 2
    done
    exec "$@"'
  cmd=(unshare --mount --propagation private env N="$host_tmpfs" bash -c "$setup" bash "${cmd[@]}")
fi

echo "run_test.sh: running $where: ${cmd[*]}"
"${cmd[@]}"
rc=$?

if [[ -n "$seedsc" && -s "$sandbox_xml" && -n "${XML_OUTPUT_FILE:-}" ]]; then
  cp "$sandbox_xml" "$XML_OUTPUT_FILE"
fi

if ((rc == 0)); then
  echo "run_test.sh: PASS: $(basename "$binary") $where"
  exit 0
fi
if ((rc > 128)); then
  why="was killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
else
  why="exited with status $rc"
fi
echo "run_test.sh: FAIL: $(basename "$binary") $why $where" >&2
exit 1
