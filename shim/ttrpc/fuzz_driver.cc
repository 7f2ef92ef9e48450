// fuzz_frame's seeds (valid request frames) for the plain driver
// (test/fuzz/fuzz_driver.h), which mutates them for --seconds=N.
#include <cstdint>
#include <string>
#include <vector>

#include "shim/ttrpc/frame.h"
#include "shim/ttrpc/ttrpc.pb.h"
#include "test/fuzz/fuzz_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::string> Seeds() {
  using namespace seedvisor::ttrpc;
  std::vector<std::string> seeds;
  KeyValue kv;
  kv.set_key("k");
  kv.set_value("v");
  for (const char* svc : {"svc", "nope"}) {
    for (const char* method : {"Echo", "Other"}) {
      Request r;
      r.set_service(svc);
      r.set_method(method);
      r.set_payload(kv.SerializeAsString());
      r.set_timeout_nano(5);
      KeyValue* md = r.add_metadata();
      md->set_key("containerd-namespace-ttrpc");
      md->set_value("default");
      seeds.push_back(EncodeFrame(1, kTypeRequest, r.SerializeAsString()) +
                      EncodeFrame(3, kTypeRequest, r.SerializeAsString()));
    }
  }
  seeds.push_back(EncodeFrame(2, kTypeRequest, ""));
  seeds.push_back(EncodeFrame(1, kTypeData, "x", 1));
  return seeds;
}

}  // namespace

int main(int argc, char** argv) {
  return seedvisor::fuzz::RunDriver(argc, argv, "fuzz_frame", Seeds(), LLVMFuzzerTestOneInput);
}
