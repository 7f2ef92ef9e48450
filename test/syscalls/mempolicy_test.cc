// NUMA memory policy of a thread on a machine with one memory node (the
// sandbox always shows one; natively the cases that need it skip on a
// bigger host): set_mempolicy(2) and get_mempolicy(2), their argument
// checks and errnos (mm/mempolicy.c), what threads, fork and exec do with
// a policy, and /sys/devices/system/node agreeing with
// /sys/devices/system/cpu and /proc/meminfo. Ranges: mbind_test.cc.
#include <errno.h>
#include <linux/mempolicy.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/mempolicy_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

TEST(Mempolicy, DefaultAndMemsAllowed) {
  REQUIRE_ONE_NODE();
  int mode = -1;
  unsigned long mask[16];
  memset(mask, 0xff, sizeof(mask));
  ASSERT_EQ(GetMempolicy(&mode, mask, kMaxNode, nullptr, 0), 0) << strerror(errno);
  EXPECT_EQ(mode, MPOL_DEFAULT);
  // Only the first long is the kernel's (nr_node_ids bits); the rest of
  // the caller's bits are zeroed.
  for (unsigned long w : mask) EXPECT_EQ(w, 0u);
  ASSERT_EQ(GetMempolicy(&mode, mask, kMaxNode, nullptr, MPOL_F_MEMS_ALLOWED), 0);
  EXPECT_EQ(mask[0], 1u);
  EXPECT_EQ(mode, 0);
  // No policy pointer, no mask: numa_available()'s probe.
  EXPECT_EQ(GetMempolicy(nullptr, nullptr, 0, nullptr, 0), 0);
}

TEST(Mempolicy, GetArgumentErrors) {
  int mode;
  unsigned long mask[16];
  errno = 0;
  EXPECT_EQ(GetMempolicy(&mode, mask, 0, nullptr, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(GetMempolicy(&mode, mask, kMaxNode, nullptr, 1 << 3), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(GetMempolicy(&mode, mask, kMaxNode, nullptr, MPOL_F_MEMS_ALLOWED | MPOL_F_NODE), -1);
  EXPECT_EQ(errno, EINVAL);
  // An address without MPOL_F_ADDR.
  EXPECT_EQ(GetMempolicy(&mode, mask, kMaxNode, mask, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  // MPOL_F_NODE of a policy that does not interleave.
  EXPECT_EQ(GetMempolicy(&mode, nullptr, 0, nullptr, MPOL_F_NODE), -1);
  EXPECT_EQ(errno, EINVAL);
  // More than a page of bits to zero.
  EXPECT_EQ(GetMempolicy(&mode, mask, 4096 * 8 + 2, nullptr, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(GetMempolicy(reinterpret_cast<int*>(8), nullptr, 0, nullptr, 0), -1);
  EXPECT_EQ(errno, EFAULT);
  EXPECT_EQ(GetMempolicy(&mode, reinterpret_cast<unsigned long*>(8), kMaxNode, nullptr, 0), -1);
  EXPECT_EQ(errno, EFAULT);
}

TEST(Mempolicy, SetAndGetEachMode) {
  REQUIRE_ONE_NODE();
  DefaultPolicyAfter reset;
  const unsigned long node0 = 1;
  struct Case {
    int mode;
    const unsigned long* mask;
    int reported;
    unsigned long reported_mask;
  } cases[] = {
      {MPOL_BIND, &node0, MPOL_BIND, 1},
      {MPOL_INTERLEAVE, &node0, MPOL_INTERLEAVE, 1},
      {MPOL_PREFERRED, &node0, MPOL_PREFERRED, 1},
      {MPOL_PREFERRED, nullptr, MPOL_LOCAL, 0},  // preferred with no node is local
      {MPOL_LOCAL, nullptr, MPOL_LOCAL, 0},
      {MPOL_PREFERRED_MANY, &node0, MPOL_PREFERRED_MANY, 1},
      {kWeightedInterleave, &node0, kWeightedInterleave, 1},
      {MPOL_BIND | MPOL_F_STATIC_NODES, &node0, MPOL_BIND | MPOL_F_STATIC_NODES, 1},
      {MPOL_BIND | MPOL_F_NUMA_BALANCING, &node0, MPOL_BIND | MPOL_F_NUMA_BALANCING, 1},
      {MPOL_DEFAULT, nullptr, MPOL_DEFAULT, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.mode);
    ASSERT_EQ(SetMempolicy(c.mode, c.mask, c.mask ? 64 : 0), 0) << strerror(errno);
    int mode = -1;
    unsigned long mask[16];
    memset(mask, 0xff, sizeof(mask));
    ASSERT_EQ(GetMempolicy(&mode, mask, kMaxNode, nullptr, 0), 0);
    EXPECT_EQ(mode, c.reported);
    EXPECT_EQ(mask[0], c.reported_mask);
  }
}

TEST(Mempolicy, InterleaveNextNode) {
  REQUIRE_ONE_NODE();
  DefaultPolicyAfter reset;
  const unsigned long node0 = 1;
  ASSERT_EQ(SetMempolicy(MPOL_INTERLEAVE, &node0, 64), 0);
  int node = -1;
  ASSERT_EQ(GetMempolicy(&node, nullptr, 0, nullptr, MPOL_F_NODE), 0);
  EXPECT_EQ(node, 0);
}

TEST(Mempolicy, StaticAndRelativeNodesKeepTheCallersMask) {
  REQUIRE_ONE_NODE();
  DefaultPolicyAfter reset;
  // Node 5 does not exist: STATIC keeps it in the mask it reports, the
  // policy uses node 0; RELATIVE maps node 1 onto node 0.
  const unsigned long nodes05 = 0x21, node1 = 2;
  ASSERT_EQ(SetMempolicy(MPOL_BIND | MPOL_F_STATIC_NODES, &nodes05, 64), 0) << strerror(errno);
  int mode;
  unsigned long mask[16] = {};
  ASSERT_EQ(GetMempolicy(&mode, mask, kMaxNode, nullptr, 0), 0);
  EXPECT_EQ(mode, MPOL_BIND | MPOL_F_STATIC_NODES);
  EXPECT_EQ(mask[0], 0x21u);
  ASSERT_EQ(SetMempolicy(MPOL_INTERLEAVE | MPOL_F_RELATIVE_NODES, &node1, 64), 0);
  ASSERT_EQ(GetMempolicy(&mode, mask, kMaxNode, nullptr, 0), 0);
  EXPECT_EQ(mode, MPOL_INTERLEAVE | MPOL_F_RELATIVE_NODES);
  EXPECT_EQ(mask[0], 2u);
  // STATIC with only nodes that do not exist leaves none.
  const unsigned long node5 = 0x20;
  EXPECT_EQ(SetMempolicy(MPOL_BIND | MPOL_F_STATIC_NODES, &node5, 64), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Mempolicy, SetArgumentErrors) {
  REQUIRE_ONE_NODE();
  DefaultPolicyAfter reset;
  const unsigned long node0 = 1, node1 = 2, none = 0;
  struct Case {
    int mode;
    const unsigned long* mask;
    unsigned long maxnode;
    int err;
  } cases[] = {
      {7, &node0, 64, EINVAL},                                         // past MPOL_MAX
      {-1, &node0, 64, EINVAL},
      {MPOL_BIND | MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES, &node0, 64, EINVAL},
      {MPOL_INTERLEAVE | MPOL_F_NUMA_BALANCING, &node0, 64, EINVAL},  // BIND only
      {MPOL_BIND, &none, 64, EINVAL},
      {MPOL_BIND, nullptr, 0, EINVAL},
      {MPOL_DEFAULT, &node0, 64, EINVAL},
      {MPOL_LOCAL, &node0, 64, EINVAL},
      {MPOL_PREFERRED | MPOL_F_STATIC_NODES, &none, 64, EINVAL},
      {MPOL_BIND, &node1, 64, EINVAL},       // no node 1 on one node
      {MPOL_PREFERRED, &node1, 64, EINVAL},
      {MPOL_BIND, &node0, 1, EINVAL},        // maxnode 1: no bits read, no nodes
      {MPOL_BIND, &node0, 4096 * 8 + 2, EINVAL},  // more than a page of bits
      {MPOL_BIND, reinterpret_cast<const unsigned long*>(8), 64, EFAULT},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << "mode " << c.mode << " maxnode " << c.maxnode);
    errno = 0;
    EXPECT_EQ(SetMempolicy(c.mode, c.mask, c.maxnode), -1);
    EXPECT_EQ(errno, c.err);
  }
  int mode;
  ASSERT_EQ(GetMempolicy(&mode, nullptr, 0, nullptr, 0), 0);
  EXPECT_EQ(mode, MPOL_DEFAULT);  // every refused call left it alone
}

TEST(Mempolicy, MasksLargerThanTheKernels) {
  REQUIRE_ONE_NODE();
  DefaultPolicyAfter reset;
  // 2048 bits: past MAX_NUMNODES they must be zero.
  unsigned long big[32] = {};
  big[0] = 1;
  ASSERT_EQ(SetMempolicy(MPOL_BIND, big, 2048 + 1), 0) << strerror(errno);
  big[1500 / 64] = 1ul << (1500 % 64);
  EXPECT_EQ(SetMempolicy(MPOL_BIND, big, 2048 + 1), -1);
  EXPECT_EQ(errno, EINVAL);
  // get_nodes() checks the whole long that holds the last bit asked for,
  // even its bits past maxnode - 1: maxnode 1500 (bits 0..1498) still sees
  // bit 1500; with 1473 (bits 0..1471) its long is not read.
  EXPECT_EQ(SetMempolicy(MPOL_BIND, big, 1500), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(SetMempolicy(MPOL_BIND, big, 1473), 0) << strerror(errno);
  // A node below MAX_NUMNODES that is not there.
  unsigned long n900[16] = {};
  n900[900 / 64] = 1ul << (900 % 64);
  EXPECT_EQ(SetMempolicy(MPOL_BIND, n900, kMaxNode), -1);
  EXPECT_EQ(errno, EINVAL);
}

TEST(Mempolicy, PolicyIsPerThreadAndInherited) {
  REQUIRE_ONE_NODE();
  DefaultPolicyAfter reset;
  const unsigned long node0 = 1;
  ASSERT_EQ(SetMempolicy(MPOL_INTERLEAVE, &node0, 64), 0);
  int in_thread = -1, after_reset = -1;
  std::thread([&] {
    GetMempolicy(&in_thread, nullptr, 0, nullptr, 0);
    SetMempolicy(MPOL_DEFAULT, nullptr, 0);
    GetMempolicy(&after_reset, nullptr, 0, nullptr, 0);
  }).join();
  EXPECT_EQ(in_thread, MPOL_INTERLEAVE);
  EXPECT_EQ(after_reset, MPOL_DEFAULT);
  int mode = -1;
  ASSERT_EQ(GetMempolicy(&mode, nullptr, 0, nullptr, 0), 0);
  EXPECT_EQ(mode, MPOL_INTERLEAVE);  // the thread's reset was its own
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int m = -1;
    GetMempolicy(&m, nullptr, 0, nullptr, 0);
    _exit(m == MPOL_INTERLEAVE ? 0 : 1);
  }
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

// Run by ExecKeepsThePolicy in the image it execs: exits 0 if the policy
// the exec'ing thread had is still there.
TEST(Mempolicy, ExecKeepsThePolicyChild) {
  if (getenv("MEMPOLICY_EXEC_CHILD") == nullptr) GTEST_SKIP() << "run by ExecKeepsThePolicy";
  int mode = -1;
  unsigned long mask[16] = {};
  GetMempolicy(&mode, mask, kMaxNode, nullptr, 0);
  _exit(mode == (MPOL_BIND | MPOL_F_STATIC_NODES) && mask[0] == 0x21 ? 0 : 1);
}

TEST(Mempolicy, ExecKeepsThePolicy) {
  REQUIRE_ONE_NODE();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // set_mempolicy(2): the policy is preserved across execve(2).
    const unsigned long nodes05 = 0x21;
    if (SetMempolicy(MPOL_BIND | MPOL_F_STATIC_NODES, &nodes05, 64) != 0) _exit(2);
    setenv("MEMPOLICY_EXEC_CHILD", "1", 1);
    execl("/proc/self/exe", "mempolicy_test", "--gtest_filter=Mempolicy.ExecKeepsThePolicyChild",
          nullptr);
    _exit(3);
  }
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(SysNode, AgreesWithCpusAndMeminfo) {
  REQUIRE_ONE_NODE();
  for (const char* f : {"online", "possible", "has_cpu", "has_normal_memory"}) {
    EXPECT_EQ(ReadFile(std::string("/sys/devices/system/node/") + f), "0\n") << f;
  }
  EXPECT_EQ(ReadFile("/sys/devices/system/node/node0/cpulist"),
            ReadFile("/sys/devices/system/cpu/online"));
  EXPECT_EQ(ReadFile("/sys/devices/system/node/node0/distance"), "10\n");
  std::string cpumap = ReadFile("/sys/devices/system/node/node0/cpumap");
  EXPECT_FALSE(cpumap.empty());
  EXPECT_EQ(cpumap.back(), '\n');
  // node0's MemTotal is the machine's.
  auto value = [](const std::string& text, const std::string& key) -> long {
    size_t at = text.find(key);
    if (at == std::string::npos) return -1;
    return std::stol(text.substr(at + key.size()));
  };
  std::string node = ReadFile("/sys/devices/system/node/node0/meminfo");
  long node_total = value(node, "MemTotal:");
  EXPECT_GT(node_total, 0);
  EXPECT_EQ(node_total, value(ReadFile("/proc/meminfo"), "MemTotal:"));
  EXPECT_GE(value(node, "MemUsed:"), 0);
  EXPECT_NE(node.find("Node 0 HugePages_Free:"), std::string::npos);
  EXPECT_EQ(ReadFile("/sys/devices/system/cpu/cpu0/node0/distance"), "10\n");
}

}  // namespace
}  // namespace syscall_test
