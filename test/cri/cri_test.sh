#!/usr/bin/env bash
# Pods through containerd's CRI plugin (issue 14): a private containerd 1.6
# (its own root, state and sockets under one temp dir) with the CRI plugin,
# a pause image built here as the sandbox image, CNI loopback + a bridge of
# this run's own on a private /24, and cri_pods.py driving the CRI API as a
# kubelet does, with the runtime handler --handler (runc: the reference that
# proves the test; seedsc: containerd-shim-seedsc-v1).
#
#   cri_test.sh --handler=runc|seedsc --pause=PATH --image-script=PATH
#               --client=PATH [--shim=PATH --seedsc=PATH --seedsc-flags=FLAGS]
#
# --seedsc-flags ("--network=sandbox ...") go into the seedsc runtime's
# ConfigPath file; the pod sandbox's seedsc must carry the first.
#               [--known-failing=CHECK[,CHECK...]=WHY]   (for cri_pods.py)
#               [--bench=N [--bench-handlers=runc,seedsc]]
#
# --bench (bench/cri_pod_bench.sh): instead of the checks, cri_pods.py times
# N pod starts per handler (with --handler=seedsc, both are configured).
#
# CRI_TEST_LOG_LEVEL=debug: containerd logs at debug level, and so passes
# -debug to the shims (each task RPC with its time). KEEP_TMP=1 keeps the
# temp dir of a failed run.
#
# Skips (one line, status 0) without containerd, runc, the CNI plugins or
# Debian's python3-grpcio/python3-grpc-tools. Afterwards nothing may be left:
# no process of this run, no mount under the temp dir, no cgroup, no bridge.
source "$(dirname "$0")/../e2e/testlib.sh"
source "$(dirname "$0")/../containerd/containerd_lib.sh"
testlib_init "$@"
HANDLER="${TESTLIB_ARGS[handler]:?--handler=runc|seedsc is required}"
PAUSE="$(realpath "${TESTLIB_ARGS[pause]:?--pause=PATH is required}")"
MAKE_IMAGE="$(realpath "${TESTLIB_ARGS[image-script]:?--image-script=PATH is required}")"
CLIENT="$(realpath "${TESTLIB_ARGS[client]:?--client=PATH is required}")"
SHIM="$(realpath "${TESTLIB_ARGS[shim]:-/dev/null}")"  # not used by runc
CNI_BIN=/usr/lib/cni
TESTLIB_TIMEOUT=100s

skip() { echo "cri_test: SKIP: $*"; testlib_finish; exit 0; }
((EUID == 0)) || skip "needs root (containerd, network namespaces)"
for tool in containerd ctr runc ip; do
  command -v "$tool" >/dev/null || skip "$tool not installed (apt-get install containerd)"
done
[[ -x "$CNI_BIN/bridge" && -x "$CNI_BIN/loopback" && -x "$CNI_BIN/host-local" ]] ||
  skip "no CNI plugins in $CNI_BIN (apt-get install containernetworking-plugins)"
/usr/bin/python3 -c 'import grpc, grpc_tools' 2>/dev/null ||
  skip "python3 grpc missing (apt-get install python3-grpcio python3-grpc-tools)"

ctrd_init seedcri
cp "$SEEDSC" "$T/bin/seedsc"
# seedsc's flags reach it as a kubelet node would set them: the runtime's
# options table names a ConfigPath whose [seedsc_config] holds them.
seedsc_runtime=""
if [[ "$HANDLER" == seedsc ]]; then
  echo "[seedsc_config]" >"$T/seedsc.toml"
  for flag in ${TESTLIB_ARGS[seedsc-flags]:-}; do
    flag="${flag#--}"
    echo "  ${flag%%=*} = \"${flag#*=}\"" >>"$T/seedsc.toml"
  done
  seedsc_runtime="
    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.seedsc]
      runtime_type = \"io.containerd.seedsc.v1\"
      [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.seedsc.options]
        TypeUrl = \"io.containerd.seedsc.v1.options\"
        ConfigPath = \"$T/seedsc.toml\""
fi
# This run's own bridge and /24; ctrd_check_nothing_left looks for cgroups
# under /$NS (cri_pods.py puts each pod under --cgroup-parent=/$NS).
BRIDGE="scri${T##*.}"
SUBNET_PREFIX="10.$((200 + RANDOM % 50)).$((RANDOM % 250))."
mkdir -p "$T/cni/net.d" "$T/cni/ipam" "$T/logs"
cat >"$T/cni/net.d/10-seedcri.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "$BRIDGE", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "ipMasq": false,
   "ipam": {"type": "host-local", "dataDir": "$T/cni/ipam",
            "ranges": [[{"subnet": "${SUBNET_PREFIX}0/24"}]]}}]}
JSON
cat >"$T/cni/net.d/99-loopback.conf" <<JSON
{"cniVersion": "0.4.0", "name": "lo", "type": "loopback"}
JSON

# containerd with CRI on; its stream server on an ephemeral loopback port.
cat >"$T/config.toml" <<TOML
version = 2
root = "$T/root"
state = "$T/state"
[grpc]
  address = "$ADDR"
[ttrpc]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/seedvisor/pause:test"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  # Without CAP_SYS_RESOURCE (a container host) a pod cannot go below
  # containerd's own oom_score_adj (the sandbox asks for -998).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"$seedsc_runtime
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$T/cni/net.d"
    max_conf_num = 2
TOML

cleanup_all() {
  local p left
  kill "$CTRD_PID" 2>/dev/null
  wait "$CTRD_PID" 2>/dev/null
  # Container processes do not carry RUN_MARKER (ours() misses them), but
  # they live in the pods' cgroups.
  left="$(find "/sys/fs/cgroup/pids/$NS" -name cgroup.procs -exec cat {} + 2>/dev/null | tr '\n' ' ')"
  check_eq no_container_process_left "" "${left% }" "processes in /sys/fs/cgroup/pids/$NS"
  for p in $left; do kill -9 "$p"; done
  [[ -n "${left// }" ]] && sleep 0.5
  # The pods' parent cgroups are the kubelet's part (cri_pods.py's here):
  # empty ones go; anything in them is a leftover the check reports.
  for p in /sys/fs/cgroup/*/"$NS"/pod-*; do rmdir "$p" 2>/dev/null; done
  for p in /sys/fs/cgroup/*/"$NS"; do rmdir "$p" 2>/dev/null; done
}

env "$RUN_MARKER" PATH="$T/bin:$PATH" SEEDSC_BINARY="$T/bin/seedsc" SEEDSC_ROOT="$T/seedsc" \
  SEEDSC_SHIM_SOCKET_DIR="$T/s" containerd --config "$T/config.toml" \
  --log-level "${CRI_TEST_LOG_LEVEL:-info}" \
  >"$T/containerd.log" 2>&1 &
CTRD_PID=$!
CTR=(ctr --address "$ADDR" --namespace k8s.io)
for _ in $(seq 100); do
  "${CTR[@]}" version >/dev/null 2>&1 && break
  sleep 0.1
done

"$MAKE_IMAGE" "$T/pause.tar" localhost/seedvisor/pause:test "$PAUSE"
"$MAKE_IMAGE" "$T/busybox.tar"
tcase import_pause --grep 'pause:test' -- "${CTR[@]}" images import "$T/pause.tar"
tcase import_busybox --grep 'busybox:local' -- "${CTR[@]}" images import "$T/busybox.tar"

# The CRI calls and their checks, one PASS/FAIL line each.
/usr/bin/python3 "$CLIENT" --address="$ADDR" --handler="$HANDLER" --cgroup-parent="/$NS" \
  --logs="$T/logs" --image=docker.io/library/busybox:local --subnet-prefix="$SUBNET_PREFIX" \
  ${TESTLIB_ARGS[known-failing]:+"--known-failing=${TESTLIB_ARGS[known-failing]}"} \
  ${TESTLIB_ARGS[bench]:+"--bench=${TESTLIB_ARGS[bench]}"} \
  ${TESTLIB_ARGS[bench-handlers]:+"--bench-handlers=${TESTLIB_ARGS[bench-handlers]}"} \
  ${TESTLIB_ARGS[seedsc-flags]:+"--sandbox-flag=${TESTLIB_ARGS[seedsc-flags]%% *}"} \
  >"$T/client.out" 2>&1
client_status=$?
sed 's/^/  cri_pods: /' "$T/client.out"
check_eq cri_pods 0 "$client_status" "cri_pods.py --handler=$HANDLER (its FAIL lines above)"
# A pod's sandbox that went away under a running container: the seedsc shim
# says so ("wait ID/EXEC: ...", its exit watcher's control Wait failed). The
# bench kills no sandbox (the checks' pod C does), and the stop after a loss
# succeeds, so only this shows one there.
if [[ -n "${TESTLIB_ARGS[bench]:-}" ]]; then
  lost="$(grep -E 'containerd-shim-seedsc-v1: wait [^ ]*: ' "$T/containerd.log")"
  check_eq no_sandbox_lost "" "$lost" "sandboxes lost, as the shim logged them (containerd.log)"
fi

cleanup_all
ctrd_check_nothing_left containerd
left_bridge="$(ip -o link show "$BRIDGE" 2>/dev/null | cut -d: -f2)"
check_eq bridge_is_ours_to_remove "$BRIDGE" "${left_bridge# }" "ip link show $BRIDGE (made by the CNI bridge plugin)"
ip link del "$BRIDGE" 2>/dev/null
ctrd_finish containerd.log
