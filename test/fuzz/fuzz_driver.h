// A plain driver for a libFuzzer-style target (LLVMFuzzerTestOneInput) in
// gcc builds without libFuzzer: deterministic (a fixed PRNG seed), bounded
// in time, it feeds the target random bytes and mutations of valid inputs.
// A target reports a finding by crashing (abort); the driver then dies too
// and the test fails.
//
//   int main(int argc, char** argv) {
//     return seedvisor::fuzz::RunDriver(argc, argv, "fuzz_http", {"GET / HTTP/1.1\r\n\r\n"},
//                                       LLVMFuzzerTestOneInput);
//   }
// Flags: --seconds=N (default 5), --seed=N (default 0x5eed).
#ifndef SEEDVISOR_TEST_FUZZ_FUZZ_DRIVER_H_
#define SEEDVISOR_TEST_FUZZ_FUZZ_DRIVER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace seedvisor::fuzz {

using Target = int (*)(const uint8_t* data, size_t size);

int RunDriver(int argc, char** argv, const char* name, const std::vector<std::string>& seeds,
              Target target);

}  // namespace seedvisor::fuzz

#endif  // SEEDVISOR_TEST_FUZZ_FUZZ_DRIVER_H_
