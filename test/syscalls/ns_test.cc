// Conformance tests for unshare(2) and setns(2) (kernel/fork.c
// ksys_unshare(), kernel/nsproxy.c setns()): which flags are EINVAL, what
// needs CAP_SYS_ADMIN (EPERM), entering the namespaces one is already in,
// and unsharing the fd table and fs context from a CLONE_FILES/CLONE_FS
// sibling. New namespaces themselves: UTS with CAP_SYS_ADMIN (its own
// names, /proc/PID/ns/uts inode, setns in and out), the others without.
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

struct Ns {
  const char* name;
  int type;
};
// Every namespace a process can setns into the one it is in already (the
// user namespace is the exception: EINVAL).
constexpr Ns kNamespaces[] = {
    {"uts", CLONE_NEWUTS}, {"ipc", CLONE_NEWIPC},       {"net", CLONE_NEWNET},
    {"mnt", CLONE_NEWNS},  {"pid", CLONE_NEWPID},       {"cgroup", CLONE_NEWCGROUP},
    {"time", CLONE_NEWTIME},
};

int OpenNs(const char* name) {
  return open((std::string("/proc/self/ns/") + name).c_str(), O_RDONLY | O_CLOEXEC);
}

TEST(SetnsTest, OwnNamespacesWithCapSysAdmin) {
  if (!HaveCap(CAP_SYS_ADMIN)) GTEST_SKIP() << "needs CAP_SYS_ADMIN";
  // In a child: entering the mount namespace moves root and cwd.
  EXPECT_EXIT_CODE(RunInChild([] {
                     int i = 0;
                     for (const Ns& ns : kNamespaces) {
                       ++i;
                       const int fd = OpenNs(ns.name);
                       if (fd < 0) return 10 * i;
                       if (setns(fd, 0) != 0) return 10 * i + 1;
                       if (setns(fd, ns.type) != 0) return 10 * i + 2;
                       // The fd's type must be the one asked for.
                       const int other = ns.type == CLONE_NEWUTS ? CLONE_NEWIPC : CLONE_NEWUTS;
                       if (setns(fd, other) != -1 || errno != EINVAL) return 10 * i + 3;
                       close(fd);
                     }
                     // Back at the namespace's root.
                     char cwd[256];
                     if (getcwd(cwd, sizeof(cwd)) == nullptr || strcmp(cwd, "/") != 0) return 90;
                     return 0;
                   }),
                   0);
}

TEST(SetnsTest, ReenteringTheUserNamespaceIsEinval) {
  const int fd = OpenNs("user");
  ASSERT_GE(fd, 0);
  EXPECT_ERRNO(EINVAL, setns(fd, 0));
  EXPECT_ERRNO(EINVAL, setns(fd, CLONE_NEWUSER));
  EXPECT_ERRNO(EINVAL, setns(fd, CLONE_NEWUTS));
  close(fd);
}

TEST(SetnsTest, WithoutCapSysAdminIsEperm) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (!DropEffective(CAP_SYS_ADMIN)) return 1;
                     int i = 0;
                     for (const Ns& ns : kNamespaces) {
                       ++i;
                       const int fd = OpenNs(ns.name);
                       if (fd < 0) return 10 * i;
                       if (setns(fd, 0) != -1 || errno != EPERM) return 10 * i + 1;
                       if (setns(fd, ns.type) != -1 || errno != EPERM) return 10 * i + 2;
                       // A wrong type is EINVAL before the permission check.
                       const int other = ns.type == CLONE_NEWUTS ? CLONE_NEWIPC : CLONE_NEWUTS;
                       if (setns(fd, other) != -1 || errno != EINVAL) return 10 * i + 3;
                       close(fd);
                     }
                     const int user = OpenNs("user");
                     if (setns(user, 0) != -1 || errno != EINVAL) return 91;
                     return 0;
                   }),
                   0);
}

TEST(SetnsTest, Pidfd) {
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  ASSERT_GE(pidfd, 0) << ErrnoName(errno);
  // Flags must name namespaces, at least one (check_setns_flags()); the
  // user namespace is one's own, EINVAL.
  EXPECT_ERRNO(EINVAL, setns(pidfd, 0));
  EXPECT_ERRNO(EINVAL, setns(pidfd, CLONE_VM));
  EXPECT_ERRNO(EINVAL, setns(pidfd, CLONE_NEWUTS | CLONE_FILES));
  EXPECT_ERRNO(EINVAL, setns(pidfd, CLONE_NEWUSER));
  EXPECT_ERRNO(EINVAL, setns(pidfd, CLONE_NEWUTS | CLONE_NEWUSER));
  if (HaveCap(CAP_SYS_ADMIN)) {
    EXPECT_EXIT_CODE(RunInChild([pidfd] {
                       if (setns(pidfd, CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET) != 0) return 1;
                       if (setns(pidfd, CLONE_NEWNS | CLONE_NEWPID) != 0) return 2;
                       return 0;
                     }),
                     0);
  }
  EXPECT_EXIT_CODE(RunInChild([pidfd] {
                     if (!DropEffective(CAP_SYS_ADMIN)) return 1;
                     if (setns(pidfd, CLONE_NEWUTS) != -1 || errno != EPERM) return 2;
                     if (setns(pidfd, CLONE_NEWNS) != -1 || errno != EPERM) return 3;
                     return 0;
                   }),
                   0);
  close(pidfd);
}

TEST(SetnsTest, OtherFilesAreEinvalAndBadFdsEbadf) {
  int p[2];
  ASSERT_OK(pipe(p));
  EXPECT_ERRNO(EINVAL, setns(p[0], 0));
  EXPECT_ERRNO(EINVAL, setns(p[0], CLONE_NEWUTS));
  close(p[0]);
  close(p[1]);
  EXPECT_ERRNO(EBADF, setns(p[0], CLONE_NEWUTS));
  EXPECT_ERRNO(EBADF, setns(-1, 0));
}

TEST(UnshareTest, FlagChecks) {
  EXPECT_EQ(unshare(0), 0) << ErrnoName(errno);
  // Not unshare flags at all.
  EXPECT_ERRNO(EINVAL, unshare(CLONE_PARENT));
  EXPECT_ERRNO(EINVAL, unshare(CLONE_SETTLS));
  EXPECT_ERRNO(EINVAL, unshare(CLONE_VFORK));
  EXPECT_ERRNO(EINVAL, unshare(static_cast<int>(0x80000000u)));
  // What a single-threaded process already has to itself.
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (unshare(CLONE_FILES) != 0) return 1;
                     if (unshare(CLONE_FS) != 0) return 2;
                     if (unshare(CLONE_SYSVSEM) != 0) return 3;
                     if (unshare(CLONE_THREAD) != 0) return 4;
                     if (unshare(CLONE_SIGHAND) != 0) return 5;
                     if (unshare(CLONE_VM) != 0) return 6;
                     return 0;
                   }),
                   0);
}

TEST(UnshareTest, ThreadSighandVmNeedASingleThread) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     std::atomic<bool> stop{false};
                     std::thread t([&stop] {
                       while (!stop) usleep(1000);
                     });
                     int r = 0;
                     if (unshare(CLONE_THREAD) != -1 || errno != EINVAL) r = 1;
                     if (!r && (unshare(CLONE_SIGHAND) != -1 || errno != EINVAL)) r = 2;
                     if (!r && (unshare(CLONE_VM) != -1 || errno != EINVAL)) r = 3;
                     // CLONE_NEWUSER implies CLONE_THREAD.
                     if (!r && (unshare(CLONE_NEWUSER) != -1 || errno != EINVAL)) r = 4;
                     if (!r && unshare(CLONE_FILES | CLONE_FS) != 0) r = 5;
                     stop = true;
                     t.join();
                     return r;
                   }),
                   0);
}

TEST(UnshareTest, NewNamespacesWithoutCapSysAdminAreEperm) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (!DropEffective(CAP_SYS_ADMIN)) return 1;
                     int i = 1;
                     for (int type : {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET,
                                      CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWTIME}) {
                       ++i;
                       if (unshare(type) != -1 || errno != EPERM) return i;
                     }
                     return 0;
                   }),
                   0);
}

// A CLONE_FILES/CLONE_FS sibling that unshares no longer sees our new fds
// or our umask.
int pipe_to_child[2], pipe_to_parent[2];

int UnsharingSibling(void*) {
  // The parent waits for one byte either way (our fds are its fds until we
  // unshare, so our exit would not end its read).
  char c = unshare(CLONE_FILES | CLONE_FS) == 0 ? 'u' : 'e';
  if (write(pipe_to_parent[1], &c, 1) != 1) return 2;
  if (c != 'u') return 1;
  if (read(pipe_to_child[0], &c, 1) != 1) return 3;
  // The parent made fd 900 and set the umask to 077 after we unshared.
  if (fcntl(900, F_GETFD) != -1 || errno != EBADF) return 4;
  const mode_t mask = umask(0);
  if (mask != 022) return 5;
  return 0;
}

TEST(UnshareTest, FilesAndFsLeaveTheSibling) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     umask(022);
                     if (pipe(pipe_to_child) != 0 || pipe(pipe_to_parent) != 0) return 10;
                     if (fcntl(900, F_GETFD) != -1) return 11;
                     constexpr size_t kStack = 64 * 1024;
                     void* stack = mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                     if (stack == MAP_FAILED) return 12;
                     pid_t pid = clone(UnsharingSibling, static_cast<char*>(stack) + kStack,
                                       CLONE_FILES | CLONE_FS | SIGCHLD, nullptr);
                     if (pid < 0) return 13;
                     char c;
                     if (read(pipe_to_parent[0], &c, 1) != 1 || c != 'u') {
                       int st;
                       waitpid(pid, &st, 0);
                       return 14;
                     }
                     if (dup2(0, 900) != 900) return 15;
                     umask(077);
                     if (write(pipe_to_child[1], &c, 1) != 1) return 16;
                     int st;
                     if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return 17;
                     return WEXITSTATUS(st);
                   }),
                   0);
}

// ---------------------------------------------------------------- UTS namespaces

std::string Nodename() {
  utsname u{};
  uname(&u);
  return u.nodename;
}

ino_t NsIno(pid_t pid) {
  struct stat st {};
  if (stat(("/proc/" + std::to_string(pid) + "/ns/uts").c_str(), &st) != 0) return 0;
  return st.st_ino;
}

std::string ProcHostname() {
  char buf[128] = {};
  int fd = open("/proc/sys/kernel/hostname", O_RDONLY);
  if (fd < 0) return "";
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n > 0 ? std::string(buf, n) : "";
}

// unshare(CLONE_NEWUTS): a copy of the names, changed apart from the
// parent's; its own namespace inode; /proc/sys/kernel/hostname is the
// reader's; setns() through the old namespace's file goes back.
TEST(UtsNamespaceTest, UnshareGivesItsOwnNames) {
  if (!HaveCap(CAP_SYS_ADMIN)) GTEST_SKIP() << "needs CAP_SYS_ADMIN";
  const std::string before = Nodename();
  const ino_t ns0 = NsIno(getpid());
  ASSERT_NE(ns0, 0u);
  EXPECT_EXIT_CODE(RunInChild([&] {
                     int old = OpenNs("uts");
                     if (old < 0) return 1;
                     if (unshare(CLONE_NEWUTS) != 0) return 2;
                     if (Nodename() != before) return 3;  // a copy
                     const ino_t ns1 = NsIno(getpid());
                     if (ns1 == 0 || ns1 == ns0) return 4;
                     if (sethostname("uts-child", 9) != 0) return 5;
                     if (Nodename() != "uts-child") return 6;
                     if (ProcHostname() != "uts-child\n") return 7;
                     if (setns(old, CLONE_NEWUTS) != 0) return 8;
                     if (Nodename() != before || NsIno(getpid()) != ns0) return 9;
                     return 0;
                   }),
                   0);
  EXPECT_EQ(Nodename(), before);
  EXPECT_EQ(NsIno(getpid()), ns0);
}

// clone(CLONE_NEWUTS): the child's namespace, seen by its parent through
// /proc/PID/ns/uts, entered by another process with setns(2).
TEST(UtsNamespaceTest, CloneAndSetnsIntoAChilds) {
  if (!HaveCap(CAP_SYS_ADMIN)) GTEST_SKIP() << "needs CAP_SYS_ADMIN";
  const std::string before = Nodename();
  int ready[2], done[2];
  ASSERT_OK(pipe(ready));
  ASSERT_OK(pipe(done));
  pid_t pid = static_cast<pid_t>(syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0));
  ASSERT_GE(pid, 0) << ErrnoName(errno);
  if (pid == 0) {
    char c = sethostname("uts-clone", 9) == 0 ? 'r' : 'e';
    if (write(ready[1], &c, 1) != 1) _exit(2);
    if (read(done[0], &c, 1) != 1) _exit(3);
    _exit(Nodename() == "uts-clone" ? 0 : 4);
  }
  char c;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  EXPECT_EQ(c, 'r');
  EXPECT_EQ(Nodename(), before);
  EXPECT_NE(NsIno(pid), NsIno(getpid()));
  EXPECT_EXIT_CODE(RunInChild([pid] {
                     int fd = open(("/proc/" + std::to_string(pid) + "/ns/uts").c_str(),
                                   O_RDONLY | O_CLOEXEC);
                     if (fd < 0) return 1;
                     if (setns(fd, CLONE_NEWUTS) != 0) return 2;
                     if (Nodename() != "uts-clone") return 3;
                     if (NsIno(getpid()) != NsIno(pid)) return 4;
                     // A pidfd names the same namespace.
                     if (unshare(CLONE_NEWUTS) != 0) return 5;
                     int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
                     if (pidfd < 0) return 6;
                     if (setns(pidfd, CLONE_NEWUTS) != 0) return 7;
                     if (NsIno(getpid()) != NsIno(pid)) return 8;
                     return 0;
                   }),
                   0);
  ASSERT_EQ(write(done[1], "d", 1), 1);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(Nodename(), before);
  for (int fd : {ready[0], ready[1], done[0], done[1]}) close(fd);
}

// Without CAP_SYS_ADMIN, clone(CLONE_NEWUTS) is EPERM too (copy_namespaces()).
TEST(UtsNamespaceTest, CloneWithoutCapSysAdminIsEperm) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (!DropEffective(CAP_SYS_ADMIN)) return 1;
                     long r = syscall(SYS_clone, CLONE_NEWUTS | SIGCHLD, 0, 0, 0, 0);
                     if (r == 0) _exit(0);
                     if (r > 0) {
                       waitpid(static_cast<pid_t>(r), nullptr, 0);
                       return 2;
                     }
                     return errno == EPERM ? 0 : 3;
                   }),
                   0);
}

}  // namespace
}  // namespace syscall_test
