// fuzz_fri's seeds (one valid request frame per FRI method) for the plain
// driver (test/fuzz/fuzz_driver.h), which mutates them for --seconds=N.
#include <cstdint>
#include <string>
#include <vector>

#include "fri/fri.pb.h"
#include "fri/server.h"
#include "shim/ttrpc/frame.h"
#include "shim/ttrpc/ttrpc.pb.h"
#include "test/fuzz/fuzz_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

namespace v1 = seedvisor::fri::v1;

std::string RequestFrame(uint32_t stream, const char* method, const google::protobuf::Message& m) {
  seedvisor::ttrpc::Request r;
  r.set_service(seedvisor::fri::kService);
  r.set_method(method);
  r.set_payload(m.SerializeAsString());
  return seedvisor::ttrpc::EncodeFrame(stream, seedvisor::ttrpc::kTypeRequest, r.SerializeAsString());
}

std::vector<std::string> Seeds() {
  v1::CreateRequest create;
  create.set_id("python-l0");
  create.mutable_host_root()->add_args("/usr/bin/python3");
  create.mutable_host_root()->add_env("PATH=/usr/bin");
  (*create.mutable_labels())["level"] = "0";
  v1::CreateRequest bundle;
  bundle.set_id("b");
  bundle.set_bundle("/nonexistent/bundle");
  v1::ForkRequest fork;
  fork.set_seed_id("python-l1");
  fork.set_new_id("i-1");
  fork.set_cgroup("seedd-pool/3");
  (*fork.mutable_labels())["function"] = "hello";
  v1::PauseRequest pause;
  pause.set_id("python-l1");
  v1::DestroyRequest destroy;
  destroy.set_id("i-1");
  v1::StatsRequest stats;
  v1::ListRequest list;
  return {RequestFrame(1, "Create", create), RequestFrame(3, "Create", bundle),
          RequestFrame(5, "Fork", fork),     RequestFrame(7, "Pause", pause),
          RequestFrame(9, "Destroy", destroy), RequestFrame(11, "Stats", stats),
          RequestFrame(13, "List", list) + RequestFrame(15, "Stats", stats)};
}

}  // namespace

int main(int argc, char** argv) {
  return seedvisor::fuzz::RunDriver(argc, argv, "fuzz_fri", Seeds(), LLVMFuzzerTestOneInput);
}
