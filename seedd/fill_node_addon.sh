#!/bin/sh
# Usage: fill_node_addon.sh ENTRY.js ADDON.so OUT.js
# Writes ENTRY.js with its empty OPENSSL_RESEED_ADDON filled in with the
# addon's bytes as base64 (runtimes/node/openssl_reseed.c), so that seedd's
# embedded node entry program carries the addon it loads.
set -eu
placeholder="const OPENSSL_RESEED_ADDON = '';"
n=$(grep -c -x -F "$placeholder" "$1" || true)
if [ "$n" != 1 ]; then
  echo "fill_node_addon.sh: $1 must hold the line \"$placeholder\" once (found $n)" >&2
  exit 1
fi
b64=$(base64 -w0 "$2")
awk -v line="$placeholder" -v b64="$b64" \
  '$0 == line { print "const OPENSSL_RESEED_ADDON = '\''" b64 "'\'';"; next } { print }' "$1" > "$3"
