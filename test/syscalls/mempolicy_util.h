// Helpers of the NUMA memory policy tests (mempolicy_test.cc, mbind_test.cc):
// the raw syscalls (no libnuma), and whether the machine has one memory
// node, as the sandbox always shows.
#ifndef SEEDVISOR_TEST_SYSCALLS_MEMPOLICY_UTIL_H_
#define SEEDVISOR_TEST_SYSCALLS_MEMPOLICY_UTIL_H_

#include <errno.h>
#include <linux/mempolicy.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace syscall_test {

inline const size_t kPage = getpagesize();
inline constexpr unsigned long kMaxNode = 1024 + 1;  // get_nodes() reads maxnode - 1 bits
inline constexpr int kWeightedInterleave = 6;

inline long SetMempolicy(int mode, const unsigned long* mask, unsigned long maxnode) {
  return syscall(SYS_set_mempolicy, mode, mask, maxnode);
}
inline long GetMempolicy(int* mode, unsigned long* mask, unsigned long maxnode, void* addr,
                         int flags) {
  return syscall(SYS_get_mempolicy, mode, mask, maxnode, addr, flags);
}
inline long Mbind(void* addr, size_t len, int mode, const unsigned long* mask,
                  unsigned long maxnode, unsigned flags) {
  return syscall(SYS_mbind, addr, len, mode, mask, maxnode, flags);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool OneNode() { return ReadFile("/sys/devices/system/node/has_memory") == "0\n"; }

#define REQUIRE_ONE_NODE() \
  if (!OneNode()) GTEST_SKIP() << "the host has more than one memory node"

// Resets the thread's policy at the end of a test.
struct DefaultPolicyAfter {
  ~DefaultPolicyAfter() { SetMempolicy(MPOL_DEFAULT, nullptr, 0); }
};

inline char* MapPages(size_t n) {
  void* m = mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return m == MAP_FAILED ? nullptr : static_cast<char*>(m);
}

// The policy get_mempolicy(MPOL_F_ADDR) reports for the range at `addr`.
inline int AddrMode(void* addr, unsigned long* mask = nullptr) {
  int mode = -1;
  unsigned long m[16] = {};
  EXPECT_EQ(GetMempolicy(&mode, mask ? mask : m, kMaxNode, addr, MPOL_F_ADDR), 0)
      << strerror(errno);
  return mode;
}

}  // namespace syscall_test

#endif  // SEEDVISOR_TEST_SYSCALLS_MEMPOLICY_UTIL_H_
