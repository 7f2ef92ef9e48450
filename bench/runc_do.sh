#!/usr/bin/env bash
# runc_do.sh CMD [ARGS...]: runs CMD under runc with the host's / as its
# read-only root, the way `runsc do` and `seedsc do` run it — the runc column
# of the startup benchmarks. The timing includes making the bundle (a
# read-only bind mount of / and a config.json from `runc spec`), as the
# sandboxes' `do` includes their own setup. Root only.
set -euo pipefail
(($#)) || { echo "usage: runc_do.sh CMD [ARGS...]" >&2; exit 2; }
dir="$(mktemp -d /tmp/runc_do.XXXXXX)"
cleanup() {
  umount "$dir/rootfs" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
mkdir "$dir/rootfs"
mount --bind / "$dir/rootfs"
mount -o remount,bind,ro "$dir/rootfs"
cd "$dir"
runc spec
# The process: the given argv (JSON-escaped), no terminal, cwd /tmp.
args=""
for a in "$@"; do
  a="${a//\\/\\\\}"
  a="${a//\"/\\\"}"
  args+="${args:+, }\"$a\""
done
sed -i -e 's/"terminal": true/"terminal": false/' \
  -e '/"args": \[/,/\]/c\		"args": [@ARGS@],' \
  -e 's|"cwd": "/"|"cwd": "/tmp"|' config.json
config="$(<config.json)"
printf '%s\n' "${config/@ARGS@/$args}" >config.json
exec 3>&-  # nothing of ours leaks into the container
set +e
runc run --bundle "$dir" "runc-do-$$"
rc=$?
runc delete --force "runc-do-$$" >/dev/null 2>&1
exit $rc
