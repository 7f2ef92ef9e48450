#include "test/fuzz/fuzz_driver.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

namespace seedvisor::fuzz {

int RunDriver(int argc, char** argv, const char* name, const std::vector<std::string>& seeds,
              Target target) {
  double seconds = 5;
  uint64_t seed = 0x5eed;
  for (int i = 1; i < argc; ++i) {
    if (strncmp(argv[i], "--seconds=", 10) == 0) {
      seconds = atof(argv[i] + 10);
    } else if (strncmp(argv[i], "--seed=", 7) == 0) {
      seed = strtoull(argv[i] + 7, nullptr, 0);
    } else {
      fprintf(stderr, "%s: unknown flag %s (--seconds=N, --seed=N)\n", name, argv[i]);
      return 2;
    }
  }
  std::mt19937_64 rng(seed);
  // Every seed as is first: the valid inputs must pass.
  for (const std::string& s : seeds) target(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  const auto start = std::chrono::steady_clock::now();
  long runs = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    std::string in;
    if (seeds.empty() || rng() % 4 == 0) {
      in.resize(rng() % 256);
      for (char& c : in) c = static_cast<char>(rng());
    } else {
      in = seeds[rng() % seeds.size()];
      if (rng() % 8 == 0) in += seeds[rng() % seeds.size()];  // pipelined / back to back
      int muts = 1 + static_cast<int>(rng() % 8);
      for (int m = 0; m < muts && !in.empty(); ++m) {
        size_t pos = rng() % in.size();
        switch (rng() % 6) {
          case 0: in[pos] = static_cast<char>(rng()); break;
          case 1: in[pos] ^= static_cast<char>(1 << (rng() % 8)); break;
          case 2: in.erase(pos, 1 + rng() % 4); break;
          case 3: in.insert(pos, 1, static_cast<char>(rng())); break;
          case 4: in.resize(pos); break;
          case 5: in.insert(pos, in.substr(pos, 1 + rng() % 16)); break;  // repeat a piece
        }
      }
    }
    target(reinterpret_cast<const uint8_t*>(in.data()), in.size());
    ++runs;
  }
  printf("%s: %ld inputs in %.1f s (seed %#llx), no crash\n", name, runs, seconds,
         static_cast<unsigned long long>(seed));
  return 0;
}

}  // namespace seedvisor::fuzz
