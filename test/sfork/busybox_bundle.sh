# Sourced by the sfork tests that need only busybox in their guest: a bundle
# in DIR whose rootfs holds busybox-static and the named applets, no
# terminal, and ARGS (a JSON list) as its process.
#
#   source "$(dirname "$0")/busybox_bundle.sh"
#   busybox_bundle "$SEEDSC" "$T/bundle" '["/bin/sh", "-c", "cat"]' sh cat
#   # returns 1 after a "FAIL: ..." line if it could not
busybox_bundle() {  # SEEDSC DIR ARGS APPLET...
  local seedsc="$1" b="$2" args="$3" a
  shift 3
  [[ -x /bin/busybox ]] || { echo "FAIL: /bin/busybox (busybox-static) is missing"; return 1; }
  mkdir -p "$b/rootfs/bin" "$b/rootfs/proc" "$b/rootfs/dev" "$b/rootfs/sys" "$b/rootfs/tmp"
  cp /bin/busybox "$b/rootfs/bin/busybox"
  for a in "$@"; do ln -s busybox "$b/rootfs/bin/$a"; done
  (cd "$b" && "$seedsc" spec) || { echo "FAIL: seedsc spec"; return 1; }
  python3 - "$b/config.json" "$args" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["args"] = json.loads(sys.argv[2])
json.dump(c, open(sys.argv[1], "w"), indent=1)
PY
}
