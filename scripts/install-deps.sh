#!/usr/bin/env bash
# Installs every Debian 12 package Seedvisor needs to build, test and demo.
# Idempotent and quick: does nothing (not even apt-get update) when all
# packages are already installed.
set -euo pipefail

PACKAGES=(
  # Build: Bazel and the system libraries in @system (third_party/system).
  bazel-bootstrap build-essential binutils git pkg-config
  libabsl-dev libprotobuf-dev protobuf-compiler libgflags-dev
  libgtest-dev libgmock-dev libcap-dev libseccomp-dev
  nlohmann-json3-dev
  # Tests, benchmarks and the demo.
  busybox-static python3 strace gdb procps iproute2 psmisc
  stress-ng  # bench/stress_ng.sh and its smoke test
  nodejs  # test/sfork: a Node.js seed
  gawk perl  # test/e2e/glibc_test.sh (Debian's default awk is mawk)
  libpython3.11-testsuite  # CPython regression tests (test/python)
  runsc runc containerd
  trinity  # test/hostile/trinity_soak.sh: the syscall fuzzer, only ever inside seedsc
  python3-grpcio  # test/containerd/task_update.py: containerd's Tasks.Update
  python3-grpc-tools containernetworking-plugins  # test/cri: the CRI client's stubs, CNI
  postgresql-15 postgresql-client-15  # test/e2e/postgres_test.sh, bench/postgres_bench.sh
  sqlite3  # test/e2e/sqlite_test.sh: the CLI on a 100 MB database
  keyutils  # test/syscalls:keys (request_key's native helper), test/e2e/keyctl_test.sh
  python3-numpy  # bench/faas: the heavy-import function (numpy at init)
  python3-matplotlib  # bench/faas: the latency CDF and phase plots (PNG)
  clang  # platform/kvm:kvm_thread_safety_test: -Wthread-safety (the build is gcc)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=()
if ((EUID != 0)); then SUDO=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg run (e.g. a parallel session) instead of failing.
APT=("${SUDO[@]}" apt-get -q -y -o DPkg::Lock::Timeout=600)
"${APT[@]}" update
"${APT[@]}" install --no-install-recommends "${missing[@]}"
