// User namespaces (user_namespaces(7)): clone(CLONE_NEWUSER) and
// unshare(CLONE_NEWUSER) without privilege, the ids a task sees before and
// after its maps are written (/proc/PID/uid_map, gid_map: map_write()'s
// rules), the nsfs ioctls on /proc/PID/ns/user, setns(2) into one, that the
// capabilities held in a new user namespace reach nothing outside it, and
// what a new namespace made from one asks (clone3's set_tid, a new pid
// namespace without CAP_SYS_ADMIN there), a pidfd read from a pid
// namespace that cannot see its process. LTP's ioctl_ns06, clone304 and
// ioctl_pidfd02-06 (issue 13).
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/nsfs.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/pidfd_info_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr uid_t kOverflowId = 65534;

ino_t InoOf(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

ino_t InoOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

long Clone3(struct clone_args* args) { return syscall(SYS_clone3, args, sizeof(*args)); }

// A child in a new user namespace (clone(CLONE_NEWUSER)) that waits for a
// byte on a pipe, then exits with what `fn` returns.
struct WaitingUserNsChild {
  pid_t pid = -1;
  int go = -1;
  ~WaitingUserNsChild() { Finish(); }
  int Finish() {
    if (pid <= 0) return -1;
    (void)!write(go, "x", 1);
    close(go);
    int status = 0;
    waitpid(pid, &status, 0);
    pid = -1;
    return status;
  }
};

bool StartWaiting(WaitingUserNsChild& c, int (*fn)()) {
  int p[2];
  if (pipe(p) != 0) return false;
  struct clone_args args = {};
  args.flags = CLONE_NEWUSER;
  args.exit_signal = SIGCHLD;
  long pid = Clone3(&args);
  if (pid == 0) {
    close(p[1]);
    char b;
    (void)!read(p[0], &b, 1);
    _exit(fn());
  }
  close(p[0]);
  c.pid = static_cast<pid_t>(pid);
  c.go = p[1];
  return pid > 0;
}

int ReturnZero() { return 0; }

TEST(UserNsTest, CloneGivesTheChildANewOneBelowOurs) {
  WaitingUserNsChild child;
  ASSERT_TRUE(StartWaiting(child, ReturnZero)) << ErrnoName(errno);
  const std::string path = "/proc/" + std::to_string(child.pid) + "/ns/user";
  FileDescriptor mine(open("/proc/self/ns/user", O_RDONLY));
  FileDescriptor its(open(path.c_str(), O_RDONLY));
  ASSERT_GE(mine.get(), 0) << ErrnoName(errno);
  ASSERT_GE(its.get(), 0) << ErrnoName(errno);
  EXPECT_NE(InoOf(mine.get()), InoOf(its.get()));
  EXPECT_EQ(ioctl(its.get(), NS_GET_NSTYPE), CLONE_NEWUSER);
  // Its owner (NS_GET_USERNS) and parent (NS_GET_PARENT) are ours.
  FileDescriptor owner(ioctl(its.get(), NS_GET_USERNS));
  ASSERT_GE(owner.get(), 0) << ErrnoName(errno);
  EXPECT_EQ(InoOf(owner.get()), InoOf(mine.get()));
  FileDescriptor parent(ioctl(its.get(), NS_GET_PARENT));
  ASSERT_GE(parent.get(), 0) << ErrnoName(errno);
  EXPECT_EQ(InoOf(parent.get()), InoOf(mine.get()));
  // Its owner uid is our euid, as we name it.
  uid_t owner_uid = 1234;
  ASSERT_EQ(ioctl(its.get(), NS_GET_OWNER_UID, &owner_uid), 0) << ErrnoName(errno);
  EXPECT_EQ(owner_uid, geteuid());
  // Ours has no owner we can see.
  EXPECT_ERRNO(EPERM, ioctl(mine.get(), NS_GET_USERNS));
  // The readlink text names the same inode.
  char buf[64] = {};
  ASSERT_GT(readlink(path.c_str(), buf, sizeof(buf) - 1), 0);
  EXPECT_EQ(std::string(buf), "user:[" + std::to_string(InoOf(its.get())) + "]");
  EXPECT_EXIT_CODE(child.Finish(), 0);
}

// In a new user namespace without maps: every id is the overflow id, every
// capability is held there, the maps are empty.
int Unmapped() {
  if (getuid() != kOverflowId || geteuid() != kOverflowId) return 2;
  if (getgid() != kOverflowId || getegid() != kOverflowId) return 3;
  uid_t r, e, s;
  if (getresuid(&r, &e, &s) != 0 || r != kOverflowId || s != kOverflowId) return 4;
  if (!HaveCap(CAP_SYS_ADMIN) || !HaveCap(CAP_SETUID)) return 5;
  if (ReadFile("/proc/self/uid_map") != "" || ReadFile("/proc/self/gid_map") != "") return 6;
  // An id the namespace does not map cannot be named.
  if (setuid(0) != -1 || errno != EINVAL) return 7;
  if (setresgid(0, -1, -1) != -1 || errno != EINVAL) return 8;
  return 0;
}

TEST(UserNsTest, UnmappedIdsAreTheOverflowId) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (unshare(CLONE_NEWUSER) != 0) return 1;
                     return Unmapped();
                   }),
                   0);
}

// The owner maps its own euid, once; a lone gid is refused while
// setgroups(2) is allowed; a second write is EPERM.
TEST(UserNsTest, OwnerMapsItsOwnIdOnce) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     const uid_t euid = geteuid();
                     const gid_t egid = getegid();
                     if (unshare(CLONE_NEWUSER) != 0) return 1;
                     const std::string uid_line = "0 " + std::to_string(euid) + " 1\n";
                     const std::string gid_line = "0 " + std::to_string(egid) + " 1\n";
                     FileDescriptor g(open("/proc/self/gid_map", O_WRONLY));
                     if (g.get() < 0) return 2;
                     errno = 0;
                     if (write(g.get(), gid_line.data(), gid_line.size()) != -1 ||
                         errno != EPERM) {
                       return 3;
                     }
                     FileDescriptor u(open("/proc/self/uid_map", O_WRONLY));
                     if (u.get() < 0) return 4;
                     if (write(u.get(), uid_line.data(), uid_line.size()) !=
                         static_cast<ssize_t>(uid_line.size())) {
                       return 5;
                     }
                     if (getuid() != 0 || geteuid() != 0) return 6;
                     if (getgid() != kOverflowId) return 7;
                     // "%10u %10u %10u\n", the lower id as the parent names it.
                     char want[64];
                     snprintf(want, sizeof(want), "%10u %10u %10u\n", 0u, euid, 1u);
                     if (ReadFile("/proc/self/uid_map") != want) return 8;
                     FileDescriptor again(open("/proc/self/uid_map", O_WRONLY));
                     if (again.get() < 0) return 9;
                     errno = 0;
                     if (write(again.get(), uid_line.data(), uid_line.size()) != -1 ||
                         errno != EPERM) {
                       return 10;
                     }
                     return 0;
                   }),
                   0);
}

// map_write()'s syntax checks.
TEST(UserNsTest, MalformedMapsAreEinval) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     const uid_t euid = geteuid();
                     if (unshare(CLONE_NEWUSER) != 0) return 1;
                     const std::string e = std::to_string(euid);
                     int i = 1;
                     for (std::string bad : {"0 " + e + " 0\n",  // empty range
                                             "0 " + e + "\n",    // two fields
                                             "x " + e + " 1\n",  // not a number
                                             "0 " + e + " 1\n0 " + e + " 1\n"}) {  // overlap
                       ++i;
                       FileDescriptor u(open("/proc/self/uid_map", O_WRONLY));
                       if (u.get() < 0) return 50 + i;
                       errno = 0;
                       if (write(u.get(), bad.data(), bad.size()) != -1 || errno != EINVAL) {
                         return i;
                       }
                     }
                     return 0;
                   }),
                   0);
}

// The parent (with CAP_SETUID where the namespace was made) writes the
// child's maps.
TEST(UserNsTest, ParentWritesTheChildsMaps) {
  if (!HaveCap(CAP_SETUID) || !HaveCap(CAP_SETGID)) GTEST_SKIP() << "needs CAP_SETUID";
  WaitingUserNsChild child;
  ASSERT_TRUE(StartWaiting(child, [] {
    if (getuid() != 0 || geteuid() != 0 || getgid() != 0) return 2;
    if (!HaveCap(CAP_SYS_ADMIN)) return 3;
    return 0;
  }));
  const std::string dir = "/proc/" + std::to_string(child.pid);
  const std::string uid_line = "0 " + std::to_string(geteuid()) + " 1\n";
  const std::string gid_line = "0 " + std::to_string(getegid()) + " 1\n";
  FileDescriptor u(open((dir + "/uid_map").c_str(), O_WRONLY));
  ASSERT_GE(u.get(), 0) << ErrnoName(errno);
  EXPECT_EQ(write(u.get(), uid_line.data(), uid_line.size()),
            static_cast<ssize_t>(uid_line.size()))
      << ErrnoName(errno);
  FileDescriptor g(open((dir + "/gid_map").c_str(), O_WRONLY));
  ASSERT_GE(g.get(), 0) << ErrnoName(errno);
  EXPECT_EQ(write(g.get(), gid_line.data(), gid_line.size()),
            static_cast<ssize_t>(gid_line.size()))
      << ErrnoName(errno);
  EXPECT_EXIT_CODE(child.Finish(), 0);
}

// Capabilities held in a new user namespace reach nothing its owner could
// not reach before: a file only root may read stays closed to nobody.
TEST(UserNsTest, CapabilitiesThereDoNotReachOutside) {
  // Not under $TEST_TMPDIR, whose parents nobody may not search.
  char dir[] = "/tmp/user_ns_test.XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr) << ErrnoName(errno);
  const std::string secret = std::string(dir) + "/secret";
  const std::string open_file = std::string(dir) + "/public";
  ASSERT_TRUE(WriteFile(secret, "x", 0600));
  ASSERT_TRUE(WriteFile(open_file, "x", 0644));
  ASSERT_EQ(chmod(dir, 0755), 0);
  EXPECT_EQ(RunAsNobody([&] {
                     // The directory is reachable: EACCES below is the file's.
                     FileDescriptor ok(open(open_file.c_str(), O_RDONLY));
                     if (ok.get() < 0) return 9;
                     if (unshare(CLONE_NEWUSER) != 0) return 1;
                     if (!HaveCap(CAP_DAC_OVERRIDE)) return 2;
                     if (open(secret.c_str(), O_RDONLY) != -1 || errno != EACCES) return 3;
                     if (chown(secret.c_str(), kOverflowId, kOverflowId) != -1) return 4;
                     return 0;
                   }),
            0);
  unlink(secret.c_str());
  unlink(open_file.c_str());
  rmdir(dir);
}

// setns(2) into a user namespace: not one's own (EINVAL), not one above
// (EPERM); a child's, with CAP_SYS_ADMIN over it, gives every capability
// there.
TEST(UserNsTest, Setns) {
  WaitingUserNsChild child;
  ASSERT_TRUE(StartWaiting(child, ReturnZero));
  const std::string path = "/proc/" + std::to_string(child.pid) + "/ns/user";
  EXPECT_EXIT_CODE(RunInChild([&] {
                     FileDescriptor up(open("/proc/self/ns/user", O_RDONLY));
                     FileDescriptor down(open(path.c_str(), O_RDONLY));
                     if (up.get() < 0 || down.get() < 0) return 1;
                     if (setns(up.get(), CLONE_NEWUSER) != -1 || errno != EINVAL) return 2;
                     if (setns(down.get(), CLONE_NEWUTS) != -1 || errno != EINVAL) return 3;
                     if (setns(down.get(), CLONE_NEWUSER) != 0) return 4;
                     if (InoOf("/proc/self/ns/user") != InoOf(down.get())) return 5;
                     if (getuid() != kOverflowId || !HaveCap(CAP_SYS_ADMIN)) return 6;
                     // Back up is not allowed.
                     if (setns(up.get(), CLONE_NEWUSER) != -1 || errno != EPERM) return 7;
                     return 0;
                   }),
                   0);
  EXPECT_EXIT_CODE(child.Finish(), 0);
}

// A new user namespace is what lets a caller make the other namespaces.
TEST(UserNsTest, UnshareWithOthers) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     // A new user namespace lets us make the others.
                     if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS) != 0) return 1;
                     if (!HaveCap(CAP_SYS_ADMIN)) return 2;
                     return 0;
                   }),
                   0);
}

// LTP clone304: in a new user namespace without CAP_SYS_ADMIN, a new
// namespace and a chosen pid (clone3's set_tid) are EPERM.
TEST(UserNsTest, WithoutCapSysAdminThereNewNamespacesAreEperm) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return 1;
                     if (!DropEffective(CAP_SYS_ADMIN)) return 2;
                     int i = 2;
                     pid_t want = 1;
                     for (uint64_t flags : {CLONE_NEWPID, CLONE_NEWCGROUP, CLONE_NEWIPC,
                                            CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUTS}) {
                       for (bool set_tid : {false, true}) {
                         ++i;
                         struct clone_args args = {};
                         args.flags = flags;
                         args.exit_signal = SIGCHLD;
                         if (set_tid) {
                           args.set_tid = reinterpret_cast<uintptr_t>(&want);
                           args.set_tid_size = 1;
                         }
                         long r = Clone3(&args);
                         if (r == 0) _exit(0);
                         if (r != -1 || errno != EPERM) return i;
                       }
                     }
                     struct clone_args args = {};
                     args.exit_signal = SIGCHLD;
                     args.set_tid = reinterpret_cast<uintptr_t>(&want);
                     args.set_tid_size = 1;
                     long r = Clone3(&args);
                     if (r == 0) _exit(0);
                     if (r != -1 || errno != EPERM) return 50;
                     return 0;
                   }),
                   0);
}

// Whether our uname(2) release is at least a.b.c.
bool ReleaseAtLeast(int a, int b, int c) {
  struct utsname u;
  if (uname(&u) != 0) return false;
  int x = 0, y = 0, z = 0;
  sscanf(u.release, "%d.%d.%d", &x, &y, &z);
  if (x != a) return x > a;
  if (y != b) return y > b;
  return z >= c;
}

// LTP ioctl_pidfd02-06: a child made with CLONE_NEWUSER | CLONE_NEWPID |
// CLONE_PIDFD by an unprivileged caller; its exit status through the pidfd
// once reaped; and from a process in another new pid namespace, which
// cannot see it, ESRCH (EREMOTE since Linux 6.18.14 and 6.19.10: the
// errno follows the release uname(2) says, as LTP's ioctl_pidfd06 does).
TEST(UserNsTest, PidfdOfAChildInNewUserAndPidNamespaces) {
  EXPECT_EQ(RunAsNobody([] {
                     int pidfd = -1;
                     struct clone_args args = {};
                     args.flags = CLONE_PIDFD | CLONE_NEWUSER | CLONE_NEWPID;
                     args.pidfd = reinterpret_cast<uintptr_t>(&pidfd);
                     args.exit_signal = SIGCHLD;
                     long pid = Clone3(&args);
                     if (pid == 0) _exit(getpid() == 1 ? 100 : 99);
                     if (pid < 0) return 1;
                     PidfdInfo info = {};
                     info.mask = kPidfdInfoExit;
                     int status;
                     if (waitpid(static_cast<pid_t>(pid), &status, 0) != pid) return 2;
                     if (ioctl(pidfd, kPidfdGetInfo, &info) != 0) return 3;
                     if (!(info.mask & kPidfdInfoExit) || info.exit_code != status) return 4;
                     if (!WIFEXITED(status) || WEXITSTATUS(status) != 100) return 5;
                     // From a new user and pid namespace: not visible.
                     struct clone_args other = {};
                     other.flags = CLONE_NEWUSER | CLONE_NEWPID;
                     other.exit_signal = SIGCHLD;
                     const int want = ReleaseAtLeast(6, 19, 10) ||
                                              (ReleaseAtLeast(6, 18, 14) && !ReleaseAtLeast(6, 19, 0))
                                          ? EREMOTE
                                          : ESRCH;
                     long grandchild = Clone3(&other);
                     if (grandchild == 0) {
                       PidfdInfo i = {};
                       i.mask = kPidfdInfoExit;
                       errno = 0;
                       _exit(ioctl(pidfd, kPidfdGetInfo, &i) == -1 && errno == want ? 0 : 1);
                     }
                     if (grandchild < 0) return 6;
                     if (waitpid(static_cast<pid_t>(grandchild), &status, 0) != grandchild) return 7;
                     if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return 8;
                     return 0;
                   }),
            0);
}

}  // namespace
}  // namespace syscall_test
