// kcmp(2): whether two processes share a file, an address space, an fd
// table, a fs context or signal handlers (LTP's kcmp01..03, and the
// KCMP_FILE check of pidfd_getfd01).
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

long Kcmp(pid_t a, pid_t b, int type, unsigned long i1 = 0, unsigned long i2 = 0) {
  return syscall(SYS_kcmp, a, b, type, i1, i2);
}

TEST(KcmpTest, FilesOfOneProcess) {
  TempDir dir;
  int fd = open(dir.Path("f").c_str(), O_CREAT | O_RDWR, 0600);
  int other = open(dir.Path("f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_GE(other, 0);
  int dup_fd = dup(fd);
  const pid_t me = getpid();
  EXPECT_EQ(Kcmp(me, me, KCMP_FILE, fd, fd), 0);
  EXPECT_EQ(Kcmp(me, me, KCMP_FILE, fd, dup_fd), 0);  // one open file description
  // Two opens of one file are two descriptions, in a consistent order.
  const long ab = Kcmp(me, me, KCMP_FILE, fd, other);
  const long ba = Kcmp(me, me, KCMP_FILE, other, fd);
  EXPECT_TRUE((ab == 1 && ba == 2) || (ab == 2 && ba == 1)) << ab << " " << ba;
  EXPECT_ERRNO(EBADF, Kcmp(me, me, KCMP_FILE, fd, 9999));
  close(fd);
  close(other);
  close(dup_fd);
}

TEST(KcmpTest, ForkedChildSharesFilesNotTheRest) {
  TempDir dir;
  int fd = open(dir.Path("f").c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  const pid_t parent = getpid();
  int status = RunInChild([&] {
    const pid_t me = getpid();
    if (Kcmp(parent, me, KCMP_FILE, fd, fd) != 0) return 1;  // inherited
    for (int type : {KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND}) {
      const long r = Kcmp(parent, me, type);
      if (r != 1 && r != 2) return 10 + type;
    }
    if (Kcmp(me, me, KCMP_VM) != 0) return 2;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
  close(fd);
}

// kcmp03: a clone that shares the object compares equal.
pid_t g_parent;
int g_type;
int CloneChild(void*) { return Kcmp(g_parent, getpid(), g_type) == 0 ? 0 : 1; }

TEST(KcmpTest, CloneSharedObjectsAreEqual) {
  const struct {
    unsigned long clone_flag;
    int type;
  } cases[] = {{CLONE_VM, KCMP_VM},
               {CLONE_FS, KCMP_FS},
               {CLONE_FILES, KCMP_FILES},
               {CLONE_IO, KCMP_IO},
               {CLONE_SYSVSEM, KCMP_SYSVSEM},
               {CLONE_VM | CLONE_SIGHAND, KCMP_SIGHAND}};
  static char stack[256 * 1024] __attribute__((aligned(16)));
  for (const auto& c : cases) {
    g_parent = getpid();
    g_type = c.type;
    pid_t pid =
        clone(CloneChild, stack + sizeof(stack), static_cast<int>(c.clone_flag | SIGCHLD), nullptr);
    ASSERT_GT(pid, 0) << ErrnoName(errno);
    int st;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    SCOPED_TRACE(c.type);
    EXPECT_EXIT_CODE(st, 0);
  }
}

TEST(KcmpTest, Errors) {
  const pid_t me = getpid();
  EXPECT_ERRNO(EINVAL, Kcmp(me, me, KCMP_TYPES));
  EXPECT_ERRNO(EINVAL, Kcmp(me, me, -1));
  // A pid nobody has (a reaped child's, not yet reused).
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  ASSERT_EQ(waitpid(gone, nullptr, 0), gone);
  EXPECT_ERRNO(ESRCH, Kcmp(me, gone, KCMP_VM));
  EXPECT_ERRNO(ESRCH, Kcmp(gone, me, KCMP_VM));
}

}  // namespace
}  // namespace syscall_test
