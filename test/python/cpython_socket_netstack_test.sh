#!/usr/bin/env bash
# CPython's test_socket on the sandbox's own TCP/IP stack (seedsc
# --network=sandbox do --veth=false: netstack/, loopback only), and natively
# beside it: the whole module (natively ~30 s, in the sandbox ~40-60 s on 2
# loaded CPUs), so every class that exercises the stack runs: TCP, UDP and
# UDP6 (Basic*, Threaded*, NonBlocking*, *Timeout*, FileObject*),
# sendmsg/recvmsg with RFC 3542 ancillary data (RecvmsgRFC3542AncillaryUDP6*),
# UDP-Lite, SO_REUSEPORT (test_reuse_port), create_server/create_connection.
# Any failure, error or crash on either side fails the test (skips do not:
# e.g. testHostnameRes, where the sandbox's hostname has no DNS).
#   test/python/cpython_socket_netstack_test.sh --seedsc=bazel-bin/runsc/seedsc
set -euo pipefail
seedsc=""
for a in "$@"; do
  case "$a" in
    --seedsc=*) seedsc="${a#*=}" ;;
  esac
done
[[ -n "$seedsc" ]] || { echo "usage: $0 --seedsc=PATH" >&2; exit 2; }
if [[ ! -e /usr/lib/python3.11/test/test_socket.py ]]; then
  echo "FAIL: CPython's tests are missing: install libpython3.11-testsuite (scripts/install-deps.sh)"
  exit 1
fi
exec /usr/bin/python3 "$(dirname "$0")/run_cpython_tests.py" --seedsc="$(realpath "$seedsc")" \
  --platforms=systrap --network=sandbox --timeout=600 test_socket
