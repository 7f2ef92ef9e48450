// A plain driver for LLVMFuzzerTestOneInput (for gcc builds without
// libFuzzer): random bytes, and mutations of valid request frames, for
// --seconds=N. Exits non-zero only if the target aborts (crashes).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "shim/ttrpc/frame.h"
#include "shim/ttrpc/ttrpc.pb.h"

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
  double seconds = 5;
  for (int i = 1; i < argc; ++i) {
    if (strncmp(argv[i], "--seconds=", 10) == 0) seconds = atof(argv[i] + 10);
  }
  std::mt19937_64 rng(0x5eed);
  std::vector<std::string> seeds = Seeds();
  const auto start = std::chrono::steady_clock::now();
  long runs = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
         seconds) {
    std::string in;
    if (rng() % 4 == 0) {
      in.resize(rng() % 256);
      for (char& c : in) c = static_cast<char>(rng());
    } else {
      in = seeds[rng() % seeds.size()];
      int muts = 1 + static_cast<int>(rng() % 8);
      for (int m = 0; m < muts && !in.empty(); ++m) {
        size_t pos = rng() % in.size();
        switch (rng() % 5) {
          case 0: in[pos] = static_cast<char>(rng()); break;
          case 1: in[pos] ^= static_cast<char>(1 << (rng() % 8)); break;
          case 2: in.erase(pos, 1 + rng() % 4); break;
          case 3: in.insert(pos, 1, static_cast<char>(rng())); break;
          case 4: in.resize(pos); break;
        }
      }
    }
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(in.data()), in.size());
    ++runs;
  }
  printf("fuzz_frame: %ld inputs in %.1f s, no crash\n", runs, seconds);
  return 0;
}
