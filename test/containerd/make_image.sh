#!/usr/bin/env bash
# Builds an OCI image layout tarball of a busybox image from Debian's
# busybox-static (/bin/busybox), for `ctr images import` (no registry here).
#   make_image.sh OUT.tar [NAME]     NAME defaults to docker.io/library/busybox:local
#   make_image.sh OUT.tar NAME FILE  an image of FILE alone, as /FILE's basename,
#                                    its Cmd (test/cri's pause image)
set -euo pipefail
out="$1"
name="${2:-docker.io/library/busybox:local}"
single="${3:-}"
busybox="${BUSYBOX:-/bin/busybox}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmd='["sh"]'

if [[ -n "$single" ]]; then
  mkdir -p "$work/rootfs/"{proc,sys,dev,etc}
  cp "$single" "$work/rootfs/${single##*/}"
  chmod 0755 "$work/rootfs/${single##*/}"
  cmd="[\"/${single##*/}\"]"
else
  # The layer: /bin/busybox and one symlink per applet, plus the usual dirs.
  mkdir -p "$work/rootfs/bin" "$work/rootfs/"{etc,tmp,proc,sys,dev,root,var,run}
  cp "$busybox" "$work/rootfs/bin/busybox"
  for applet in $("$busybox" --list); do
    [[ "$applet" == busybox ]] || ln -sf busybox "$work/rootfs/bin/$applet"
  done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$work/rootfs/etc/passwd"
  echo 'root:x:0:' >"$work/rootfs/etc/group"
  chmod 1777 "$work/rootfs/tmp"
fi
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  -C "$work/rootfs" -cf "$work/layer.tar" .

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
mkdir -p "$work/oci/blobs/sha256"
layer_sha="$(sha "$work/layer.tar")"
cp "$work/layer.tar" "$work/oci/blobs/sha256/$layer_sha"

cat >"$work/config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":$cmd,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$layer_sha"]},"history":[{"created_by":"test/containerd/make_image.sh"}]}
JSON
config_sha="$(sha "$work/config.json")"
cp "$work/config.json" "$work/oci/blobs/sha256/$config_sha"

cat >"$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config_sha","size":$(size "$work/config.json")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer_sha","size":$(size "$work/layer.tar")}]}
JSON
manifest_sha="$(sha "$work/manifest.json")"
cp "$work/manifest.json" "$work/oci/blobs/sha256/$manifest_sha"

cat >"$work/oci/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest_sha","size":$(size "$work/manifest.json"),"annotations":{"io.containerd.image.name":"$name","org.opencontainers.image.ref.name":"${name##*:}"}}]}
JSON
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
tar -C "$work/oci" -cf "$out" oci-layout index.json blobs
