#!/usr/bin/env bash
# A reference "seedsc" on the host kernel, to check that the e2e tests are
# right (a test must pass here before it means anything against seedsc):
#
#   native_as_seedsc.sh [--strace] [--debug-log=PATH] [...] do [--] CMD ARGS...
#
# Runs CMD in a private mount namespace chrooted into an overlayfs whose
# lower layer is the host's / and whose upper layer is a tmpfs, so, like
# `seedsc do`, writes never reach the host. --strace traces CMD with strace
# onto stderr, or into --debug-log=PATH. Like seedsc's default
# --network=none, CMD gets a network namespace of its own with only lo (up);
# --network=host keeps the host's; and a UTS namespace of its own (the
# sandbox's hostname is its own). Without --net-raw CMD has no CAP_NET_RAW
# (dropped from the bounding set), as in runsc and seedsc. Other global flags
# are ignored.
# Needs root (mount namespaces, overlayfs).
set -uo pipefail

strace=0 debug_log="" network=none net_raw=0
while (($#)) && [[ "$1" != do ]]; do
  case "$1" in
    --strace) strace=1 ;;
    --debug-log=*) debug_log="${1#*=}" ;;
    --debug-log) debug_log="$2"; shift ;;
    --network=*) network="${1#*=}" ;;
    --net-raw|--net-raw=true) net_raw=1 ;;
    --root|--platform) shift ;;  # flags with a separate value
    *) ;;
  esac
  shift
done
[[ "${1:-}" == do ]] || { echo "native_as_seedsc: expected 'do'" >&2; exit 2; }
shift
while (($#)) && [[ "$1" == -* && "$1" != -- ]]; do shift; done
[[ "${1:-}" == -- ]] && shift
(($#)) || { echo "native_as_seedsc: no command" >&2; exit 2; }

prefix=()
if ((strace)) || [[ -n "$debug_log" ]]; then
  prefix=(strace -f -qq)
  [[ -n "$debug_log" ]] && prefix+=(-o "$debug_log")
fi

# Only a mount point (the tmpfs is mounted in CMD's own mount namespace):
# under Bazel's $TEST_TMPDIR, and removed however this script ends.
mnt="$(mktemp -d "${TEST_TMPDIR:-/tmp}/native_as_seedsc.XXXXXX")"
trap 'rmdir "$mnt" 2>/dev/null' EXIT
# shellcheck disable=SC2016  # expanded by the inner shell
# strace runs outside the chroot so that its log lands on the host.
netns=()
[[ "$network" == host ]] || netns=(-n)
"${prefix[@]}" unshare -m -u "${netns[@]}" --fork bash -c '
  set -e
  mnt="$1" cwd="$2" net_raw="$3"; shift 3
  [[ -e /proc/self/ns/net && "$(readlink /proc/self/ns/net)" != "$(readlink /proc/1/ns/net)" ]] &&
    ip link set lo up
  mount --make-rprivate /
  mount -t tmpfs tmpfs "$mnt"
  mkdir "$mnt/u" "$mnt/w" "$mnt/m"
  mount -t overlay overlay -o "lowerdir=/,upperdir=$mnt/u,workdir=$mnt/w" "$mnt/m"
  for d in proc dev sys; do mount --rbind "/$d" "$mnt/m/$d"; done
  # Not exec: unshare cannot re-raise SIGKILL, so report a death by signal
  # N as exit 128+N from here. A background job with stdin given explicitly
  # keeps stdin, and bash reports no "Killed" for it.
  caps=()
  [[ "$net_raw" == 1 ]] || caps=(setpriv --bounding-set=-net_raw --)
  "${caps[@]}" chroot "$mnt/m" /bin/busybox sh -c "cd \"\$0\" 2>/dev/null || cd /; exec \"\$@\"" "$cwd" "$@" <&0 &
  wait $!
' native_as_seedsc "$mnt" "$PWD" "$net_raw" "$@"
exit $?
