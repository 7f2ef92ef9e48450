// Fuzz target: bytes from an FRI client (fri.proto over ttrpc), through the
// frame decoder, the ttrpc envelope, the FRI method routing and request
// decoding, into fri::Sandboxes' request checks. The sandboxes' seedsc is
// /bin/false and there is no seed, so nothing the fuzzer sends can boot or
// fork a sandbox: every Create/Fork ends in a clean error.
//
// With libFuzzer (clang; Bazel's toolchain here is gcc), as
// shim/ttrpc/fuzz_frame.cc describes, adding fri/{sandboxes,server,
// host_memory}.cc and bazel-bin/fri/fri.pb.cc. In CI, fuzz_fri_test runs it
// under the plain driver (test/fuzz) from fuzz_fri_main.cc's seeds.
//
// What must hold: every request frame gets exactly one well-formed response
// frame on its stream, and the sandboxes list stays empty.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fri/sandboxes.h"
#include "fri/server.h"
#include "shim/ttrpc/fuzz_server.h"
#include "shim/ttrpc/server.h"

namespace {

seedvisor::fri::Sandboxes& FuzzSandboxes() {
  static auto* sb = [] {
    char dir[] = "/tmp/fuzz_fri.XXXXXX";
    const char* tmp = getenv("TEST_TMPDIR");
    std::string root = tmp != nullptr ? std::string(tmp) + "/fri-root" : std::string(mkdtemp(dir));
    return new seedvisor::fri::Sandboxes({.seedsc = "/bin/false", .root = root, .seedsc_flags = {}});
  }();
  return *sb;
}

seedvisor::ttrpc::Server& FuzzServer() {
  static auto* s = [] {
    auto* srv = new seedvisor::ttrpc::Server();
    seedvisor::fri::RegisterFri(*srv, FuzzSandboxes());
    return srv;
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  seedvisor::ttrpc::FuzzServerFrames(FuzzServer(), data, size, 256);
  if (FuzzSandboxes().List().sandboxes_size() != 0) abort();
  return 0;
}
