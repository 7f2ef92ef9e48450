// NUMA memory policy of address ranges on a machine with one memory node
// (see mempolicy_test.cc): mbind(2) and get_mempolicy(MPOL_F_ADDR), what
// mmap, munmap, mremap, shmat/shmdt and fork do with a range's policy,
// set_mempolicy_home_node(2), migrate_pages(2) and move_pages(2).
#include <errno.h>
#include <linux/mempolicy.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/mempolicy_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

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

// `pages` new anonymous pages whose whole range has the policy `mode` on
// node 0; nullptr if the mapping or the mbind failed.
char* MapPagesWithPolicy(size_t pages, int mode) {
  char* m = MapPages(pages);
  const unsigned long node0 = 1;
  if (m == nullptr || Mbind(m, pages * kPage, mode, &node0, 64, 0) != 0) return nullptr;
  return m;
}

TEST(Mbind, NewMappingHasTheDefault) {
  REQUIRE_ONE_NODE();
  char* m = MapPagesWithPolicy(2, MPOL_BIND);
  ASSERT_NE(m, nullptr) << strerror(errno);
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
  char* m = MapPagesWithPolicy(2, MPOL_INTERLEAVE);
  ASSERT_NE(m, nullptr) << strerror(errno);
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

TEST(SetMempolicyHomeNode, RangesWithBindPolicyOnly) {
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

}  // namespace
}  // namespace syscall_test
