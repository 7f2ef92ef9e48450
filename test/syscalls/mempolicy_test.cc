// NUMA memory policy on a machine with one memory node (the sandbox always
// shows one; natively the cases that need it skip on a bigger host):
// set_mempolicy(2) and get_mempolicy(2) per thread, mbind(2) per range,
// their argument checks and errnos (mm/mempolicy.c), what fork, threads,
// munmap and mremap do with a policy, migrate_pages(2), move_pages(2),
// set_mempolicy_home_node(2), and /sys/devices/system/node agreeing with
// /sys/devices/system/cpu and /proc/meminfo.
#include <errno.h>
#include <signal.h>
#include <linux/mempolicy.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

const size_t kPage = getpagesize();
constexpr unsigned long kMaxNode = 1024 + 1;  // get_nodes() reads maxnode - 1 bits
constexpr int kWeightedInterleave = 6;

long SetMempolicy(int mode, const unsigned long* mask, unsigned long maxnode) {
  return syscall(SYS_set_mempolicy, mode, mask, maxnode);
}
long GetMempolicy(int* mode, unsigned long* mask, unsigned long maxnode, void* addr, int flags) {
  return syscall(SYS_get_mempolicy, mode, mask, maxnode, addr, flags);
}
long Mbind(void* addr, size_t len, int mode, const unsigned long* mask, unsigned long maxnode,
           unsigned flags) {
  return syscall(SYS_mbind, addr, len, mode, mask, maxnode, flags);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool OneNode() { return ReadFile("/sys/devices/system/node/has_memory") == "0\n"; }

#define REQUIRE_ONE_NODE() \
  if (!OneNode()) GTEST_SKIP() << "the host has more than one memory node"

// Resets the thread's policy at the end of a test.
struct DefaultPolicyAfter {
  ~DefaultPolicyAfter() { SetMempolicy(MPOL_DEFAULT, nullptr, 0); }
};

char* MapPages(size_t n) {
  void* m = mmap(nullptr, n * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return m == MAP_FAILED ? nullptr : static_cast<char*>(m);
}

int AddrMode(void* addr, unsigned long* mask = nullptr) {
  int mode = -1;
  unsigned long m[16] = {};
  EXPECT_EQ(GetMempolicy(&mode, mask ? mask : m, kMaxNode, addr, MPOL_F_ADDR), 0)
      << strerror(errno);
  return mode;
}

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

TEST(Mbind, RangePolicyReportedByAddress) {
  REQUIRE_ONE_NODE();
  char* m = MapPages(4);
  ASSERT_NE(m, nullptr);
  const unsigned long node0 = 1;
  EXPECT_EQ(AddrMode(m), MPOL_DEFAULT);
  ASSERT_EQ(Mbind(m + kPage, 2 * kPage, MPOL_BIND, &node0, 64, 0), 0) << strerror(errno);
  unsigned long mask[16] = {};
  EXPECT_EQ(AddrMode(m + kPage, mask), MPOL_BIND);
  EXPECT_EQ(mask[0], 1u);
  EXPECT_EQ(AddrMode(m + 2 * kPage + 100), MPOL_BIND);
  EXPECT_EQ(AddrMode(m), MPOL_DEFAULT);
  EXPECT_EQ(AddrMode(m + 3 * kPage), MPOL_DEFAULT);
  // A length rounds up to whole pages.
  ASSERT_EQ(Mbind(m + 3 * kPage, 1, MPOL_INTERLEAVE, &node0, 64, 0), 0);
  EXPECT_EQ(AddrMode(m + 3 * kPage), MPOL_INTERLEAVE);
  // The thread's own policy is untouched.
  int mode = -1;
  ASSERT_EQ(GetMempolicy(&mode, nullptr, 0, nullptr, 0), 0);
  EXPECT_EQ(mode, MPOL_DEFAULT);
  // MPOL_DEFAULT gives the range back the default.
  ASSERT_EQ(Mbind(m, 4 * kPage, MPOL_DEFAULT, nullptr, 0, 0), 0);
  EXPECT_EQ(AddrMode(m + kPage), MPOL_DEFAULT);
  // The node of a page in memory.
  m[0] = 1;
  int node = -1;
  ASSERT_EQ(GetMempolicy(&node, nullptr, 0, m, MPOL_F_NODE | MPOL_F_ADDR), 0);
  EXPECT_EQ(node, 0);
  munmap(m, 4 * kPage);
}

TEST(Mbind, ArgumentErrors) {
  REQUIRE_ONE_NODE();
  char* m = MapPages(3);
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(munmap(m + kPage, kPage), 0);  // a hole in the middle
  const unsigned long node0 = 1, node1 = 2;
  struct Case {
    void* addr;
    size_t len;
    int mode;
    const unsigned long* mask;
    unsigned flags;
    int err;
  } cases[] = {
      {m + 1, kPage, MPOL_BIND, &node0, 0, EINVAL},                   // unaligned
      {m, kPage, MPOL_BIND, &node0, 1 << 3, EINVAL},                  // MPOL_MF_LAZY
      {m, kPage, MPOL_BIND, &node1, 0, EINVAL},
      {m, kPage, 7, &node0, 0, EINVAL},
      {m, 3 * kPage, MPOL_BIND, &node0, 0, EFAULT},                   // the hole
      {m + kPage, kPage, MPOL_DEFAULT, nullptr, 0, EFAULT},           // only the hole
      {m, static_cast<size_t>(-kPage * 2), MPOL_BIND, &node0, 0, EINVAL},  // wraps
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << c.addr << " " << c.len << " " << c.mode);
    errno = 0;
    EXPECT_EQ(Mbind(c.addr, c.len, c.mode, c.mask, 64, c.flags), -1);
    EXPECT_EQ(errno, c.err);
  }
  // The default policy may span a hole; a length of 0 does nothing.
  EXPECT_EQ(Mbind(m, 3 * kPage, MPOL_DEFAULT, nullptr, 0, 0), 0) << strerror(errno);
  EXPECT_EQ(Mbind(m + kPage, 0, MPOL_BIND, &node0, 64, 0), 0);
  int mode;
  EXPECT_EQ(GetMempolicy(&mode, nullptr, 0, m + kPage, MPOL_F_ADDR), -1);
  EXPECT_EQ(errno, EFAULT);
  munmap(m, 3 * kPage);
}

TEST(Mbind, StrictAndMove) {
  REQUIRE_ONE_NODE();
  char* m = MapPages(2);
  ASSERT_NE(m, nullptr);
  m[0] = 1;
  const unsigned long node0 = 1;
  // Every page is on node 0 already: nothing misplaced, nothing to move.
  EXPECT_EQ(Mbind(m, 2 * kPage, MPOL_BIND, &node0, 64, MPOL_MF_STRICT), 0) << strerror(errno);
  EXPECT_EQ(Mbind(m, 2 * kPage, MPOL_BIND, &node0, 64, MPOL_MF_STRICT | MPOL_MF_MOVE), 0);
  EXPECT_EQ(Mbind(m, 2 * kPage, MPOL_BIND, &node0, 64, MPOL_MF_MOVE_ALL), 0);
  EXPECT_EQ(AddrMode(m), MPOL_BIND);
  // STRICT alone with a page in memory on a node outside the mask given
  // (MPOL_LOCAL gives none, RELATIVE node 1 is not node 0): EIO, and the
  // range keeps its policy. A page not in memory is not misplaced.
  EXPECT_EQ(Mbind(m, kPage, MPOL_LOCAL, nullptr, 0, MPOL_MF_STRICT), -1);
  EXPECT_EQ(errno, EIO);
  const unsigned long node1 = 2;
  EXPECT_EQ(Mbind(m, kPage, MPOL_BIND | MPOL_F_RELATIVE_NODES, &node1, 64, MPOL_MF_STRICT), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(AddrMode(m), MPOL_BIND);
  EXPECT_EQ(Mbind(m + kPage, kPage, MPOL_LOCAL, nullptr, 0, MPOL_MF_STRICT), 0);
  EXPECT_EQ(AddrMode(m + kPage), MPOL_LOCAL);
  // With MOVE the page would move (onto node 0): no error.
  EXPECT_EQ(Mbind(m, kPage, MPOL_BIND | MPOL_F_RELATIVE_NODES, &node1, 64,
                  MPOL_MF_STRICT | MPOL_MF_MOVE),
            0);
  EXPECT_EQ(AddrMode(m), MPOL_BIND | MPOL_F_RELATIVE_NODES);
  munmap(m, 2 * kPage);
}

TEST(Mbind, NewMappingHasTheDefault) {
  REQUIRE_ONE_NODE();
  char* m = MapPages(2);
  ASSERT_NE(m, nullptr);
  const unsigned long node0 = 1;
  ASSERT_EQ(Mbind(m, 2 * kPage, MPOL_BIND, &node0, 64, 0), 0);
  // Mapped again at the same place: a new VMA, no policy.
  ASSERT_EQ(mmap(m, kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
            m);
  EXPECT_EQ(AddrMode(m), MPOL_DEFAULT);
  EXPECT_EQ(AddrMode(m + kPage), MPOL_BIND);
  ASSERT_EQ(munmap(m, 2 * kPage), 0);
  ASSERT_EQ(mmap(m, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                 -1, 0),
            m);
  EXPECT_EQ(AddrMode(m + kPage), MPOL_DEFAULT);
  munmap(m, 2 * kPage);
}

TEST(Mbind, PolicyMovesWithMremapAndIsForked) {
  REQUIRE_ONE_NODE();
  char* m = MapPages(2);
  ASSERT_NE(m, nullptr);
  const unsigned long node0 = 1;
  ASSERT_EQ(Mbind(m, 2 * kPage, MPOL_INTERLEAVE, &node0, 64, 0), 0);
  char* far = MapPages(4);  // a place to move to
  ASSERT_NE(far, nullptr);
  void* moved = mremap(m, 2 * kPage, 2 * kPage, MREMAP_MAYMOVE | MREMAP_FIXED, far);
  ASSERT_EQ(moved, far);
  EXPECT_EQ(AddrMode(far + kPage), MPOL_INTERLEAVE);
  EXPECT_EQ(AddrMode(far + 2 * kPage), MPOL_DEFAULT);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int mode = -1;
    unsigned long mask[16];
    GetMempolicy(&mode, mask, kMaxNode, far, MPOL_F_ADDR);
    _exit(mode == MPOL_INTERLEAVE ? 0 : 1);
  }
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  munmap(far, 4 * kPage);
}

TEST(Mbind, NewShmAttachmentHasTheDefault) {
  REQUIRE_ONE_NODE();
  int a = shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600);
  int b = shmget(IPC_PRIVATE, kPage, IPC_CREAT | 0600);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  void* at = shmat(a, nullptr, 0);
  ASSERT_NE(at, reinterpret_cast<void*>(-1));
  const unsigned long node0 = 1;
  ASSERT_EQ(Mbind(at, kPage, MPOL_BIND, &node0, 64, 0), 0) << strerror(errno);
  EXPECT_EQ(AddrMode(at), MPOL_BIND);
  ASSERT_EQ(shmdt(at), 0);
  // Another segment where the first was.
  ASSERT_EQ(shmat(b, at, 0), at);
  EXPECT_EQ(AddrMode(at), MPOL_DEFAULT);
  shmdt(at);
  shmctl(a, IPC_RMID, nullptr);
  shmctl(b, IPC_RMID, nullptr);
}

TEST(Mempolicy, HomeNode) {
  REQUIRE_ONE_NODE();
  char* m = MapPages(3);
  ASSERT_NE(m, nullptr);
  const unsigned long node0 = 1;
  // No VMA of the range has a policy of its own.
  EXPECT_EQ(syscall(SYS_set_mempolicy_home_node, m, 3 * kPage, 0, 0), -1);
  EXPECT_EQ(errno, ENOENT);
  ASSERT_EQ(Mbind(m, kPage, MPOL_BIND, &node0, 64, 0), 0);
  EXPECT_EQ(syscall(SYS_set_mempolicy_home_node, m, 3 * kPage, 0, 0), 0) << strerror(errno);
  EXPECT_EQ(AddrMode(m), MPOL_BIND);
  ASSERT_EQ(Mbind(m + kPage, kPage, MPOL_INTERLEAVE, &node0, 64, 0), 0);
  EXPECT_EQ(syscall(SYS_set_mempolicy_home_node, m, 3 * kPage, 0, 0), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  EXPECT_EQ(syscall(SYS_set_mempolicy_home_node, m, kPage, 1, 0), -1);  // node 1 is not online
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(syscall(SYS_set_mempolicy_home_node, m, kPage, 0, 1), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(syscall(SYS_set_mempolicy_home_node, m + 1, kPage, 0, 0), -1);
  EXPECT_EQ(errno, EINVAL);
  munmap(m, 3 * kPage);
}

TEST(MigratePages, OneNode) {
  REQUIRE_ONE_NODE();
  const unsigned long node0 = 1, node1 = 2, none = 0;
  EXPECT_EQ(syscall(SYS_migrate_pages, 0, 64, &node0, &node0), 0) << strerror(errno);
  EXPECT_EQ(syscall(SYS_migrate_pages, getpid(), 64, &node1, &node0), 0);
  // Nothing allowed to move to.
  EXPECT_EQ(syscall(SYS_migrate_pages, 0, 64, &node0, &none), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(syscall(SYS_migrate_pages, 0, 64, &node0, reinterpret_cast<unsigned long*>(8)), -1);
  EXPECT_EQ(errno, EFAULT);
  EXPECT_EQ(syscall(SYS_migrate_pages, 0, 4096 * 8 + 2, &node0, &node0), -1);
  EXPECT_EQ(errno, EINVAL);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  EXPECT_EQ(syscall(SYS_migrate_pages, pid, 64, &node0, &node0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(MovePages, StatusAndMoveToNodeZero) {
  REQUIRE_ONE_NODE();
  char* m = MapPages(3);
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(munmap(m + 2 * kPage, kPage), 0);
  m[0] = 1;  // in memory; the second page never touched
  void* pages[3] = {m, m + kPage, m + 2 * kPage};
  int status[3] = {-100, -100, -100};
  ASSERT_EQ(syscall(SYS_move_pages, 0, 3, pages, nullptr, status, 0), 0) << strerror(errno);
  EXPECT_EQ(status[0], 0);
  EXPECT_EQ(status[1], -ENOENT);
  EXPECT_EQ(status[2], -EFAULT);
  int nodes[1] = {0};
  status[0] = -100;
  ASSERT_EQ(syscall(SYS_move_pages, 0, 1, pages, nodes, status, MPOL_MF_MOVE), 0);
  EXPECT_EQ(status[0], 0);
  nodes[0] = 1;
  EXPECT_EQ(syscall(SYS_move_pages, 0, 1, pages, nodes, status, MPOL_MF_MOVE), -1);
  EXPECT_EQ(errno, ENODEV);
  nodes[0] = -1;
  EXPECT_EQ(syscall(SYS_move_pages, 0, 1, pages, nodes, status, MPOL_MF_MOVE), -1);
  EXPECT_EQ(errno, ENODEV);
  EXPECT_EQ(syscall(SYS_move_pages, 0, 1, pages, nullptr, status, 1 << 3), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(syscall(SYS_move_pages, 0, 1, reinterpret_cast<void*>(8), nullptr, status, 0), -1);
  EXPECT_EQ(errno, EFAULT);
  munmap(m, 2 * kPage);
}

TEST(MovePages, AnotherProcess) {
  REQUIRE_ONE_NODE();
  char* m = MapPages(2);
  ASSERT_NE(m, nullptr);
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    m[kPage] = 1;  // the child's copy of the second page only
    char c = 0;
    write(pipefd[1], &c, 1);
    pause();
    _exit(0);
  }
  char c;
  ASSERT_EQ(read(pipefd[0], &c, 1), 1);
  void* pages[2] = {m, m + kPage};
  int status[2] = {-100, -100};
  ASSERT_EQ(syscall(SYS_move_pages, pid, 2, pages, nullptr, status, 0), 0) << strerror(errno);
  EXPECT_EQ(status[0], -ENOENT);
  EXPECT_EQ(status[1], 0);
  kill(pid, SIGKILL);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  EXPECT_EQ(syscall(SYS_move_pages, pid, 2, pages, nullptr, status, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  close(pipefd[0]);
  close(pipefd[1]);
  munmap(m, 2 * kPage);
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
