// ioctl_ns(2) on namespace files (/proc/PID/ns/*): NS_GET_NSTYPE,
// NS_GET_USERNS, NS_GET_PARENT and NS_GET_OWNER_UID (fs/nsfs.c ns_ioctl());
// any of them on another file is ENOTTY. LTP's ioctl_ns01..07.
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

ino_t InoOf(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

ino_t InoOfFd(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

TEST(NsIoctlTest, NstypeOfEveryNamespaceFile) {
  const struct {
    const char* name;
    int type;
  } kinds[] = {
      {"cgroup", CLONE_NEWCGROUP}, {"ipc", CLONE_NEWIPC}, {"mnt", CLONE_NEWNS},
      {"net", CLONE_NEWNET},       {"pid", CLONE_NEWPID}, {"user", CLONE_NEWUSER},
      {"uts", CLONE_NEWUTS},
  };
  for (const auto& k : kinds) {
    const std::string path = std::string("/proc/self/ns/") + k.name;
    int fd = open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << path << ": " << ErrnoName(errno);
    EXPECT_EQ(ioctl(fd, NS_GET_NSTYPE), k.type) << path;
    close(fd);
  }
}

TEST(NsIoctlTest, UserNamespaceOfAUtsNamespace) {
  int uts = open("/proc/self/ns/uts", O_RDONLY);
  ASSERT_GE(uts, 0);
  // The UTS namespace is owned by our user namespace: a new fd for it,
  // close-on-exec.
  int user = ioctl(uts, NS_GET_USERNS);
  ASSERT_GE(user, 0) << ErrnoName(errno);
  EXPECT_EQ(InoOfFd(user), InoOf("/proc/self/ns/user"));
  EXPECT_EQ(ioctl(user, NS_GET_NSTYPE), CLONE_NEWUSER);
  EXPECT_EQ(fcntl(user, F_GETFD), FD_CLOEXEC);
  // Its owner is uid 0 (the sandbox's, the host's init user namespace).
  uid_t owner = 12345;
  EXPECT_EQ(ioctl(user, NS_GET_OWNER_UID, &owner), 0) << ErrnoName(errno);
  EXPECT_EQ(owner, 0u);
  close(user);
  close(uts);
}

TEST(NsIoctlTest, ErrorsOfTheInitialNamespaces) {
  int uts = open("/proc/self/ns/uts", O_RDONLY);
  int user = open("/proc/self/ns/user", O_RDONLY);
  int pid = open("/proc/self/ns/pid", O_RDONLY);
  ASSERT_GE(uts, 0);
  ASSERT_GE(user, 0);
  ASSERT_GE(pid, 0);
  // A UTS namespace has no parent and no owner uid (ioctl_ns02, 03).
  EXPECT_ERRNO(EINVAL, ioctl(uts, NS_GET_PARENT));
  uid_t owner;
  EXPECT_ERRNO(EINVAL, ioctl(uts, NS_GET_OWNER_UID, &owner));
  // The initial user namespace has no owner or parent (ioctl_ns04); our
  // own pid namespace's parent is out of reach (ioctl_ns01).
  EXPECT_ERRNO(EPERM, ioctl(user, NS_GET_USERNS));
  EXPECT_ERRNO(EPERM, ioctl(user, NS_GET_PARENT));
  EXPECT_ERRNO(EPERM, ioctl(pid, NS_GET_PARENT));
  // A request nsfs does not know.
  EXPECT_ERRNO(ENOTTY, ioctl(uts, _IO(0xb7, 0x7f)));
  close(uts);
  close(user);
  close(pid);
}

// ioctl_ns07: the requests on a file that is no namespace.
TEST(NsIoctlTest, OtherFilesAreEnotty) {
  int dir = open(".", O_RDONLY);
  ASSERT_GE(dir, 0);
  for (unsigned long req : {NS_GET_PARENT, NS_GET_USERNS, NS_GET_OWNER_UID, NS_GET_NSTYPE}) {
    uid_t uid;
    SCOPED_TRACE(req);
    EXPECT_ERRNO(ENOTTY, ioctl(dir, req, &uid));
  }
  close(dir);
}

// ioctl_ns05 and ioctl_ns01: a child pid namespace's parent is ours; from
// inside, the namespace's own parent is out of reach.
TEST(NsIoctlTest, ParentOfAChildPidNamespace) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  int go[2], res[2];
  ASSERT_OK(pipe(go));
  ASSERT_OK(pipe(res));
  const pid_t child = ForkWith(CLONE_NEWPID);
  ASSERT_GE(child, 0) << ErrnoName(errno);
  if (child == 0) {
    close(go[1]);
    int fd = open("/proc/self/ns/pid", O_RDONLY);
    char r = (fd >= 0 && ioctl(fd, NS_GET_PARENT) == -1 && errno == EPERM) ? 'y' : 'n';
    (void)!write(res[1], &r, 1);
    char b;
    (void)!read(go[0], &b, 1);
    _exit(0);
  }
  close(go[0]);
  close(res[1]);
  char r = 0;
  ASSERT_EQ(read(res[0], &r, 1), 1);
  EXPECT_EQ(r, 'y') << "NS_GET_PARENT inside the new namespace is not EPERM";
  const std::string path = "/proc/" + std::to_string(child) + "/ns/pid";
  int child_fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(child_fd, 0) << ErrnoName(errno);
  int parent = ioctl(child_fd, NS_GET_PARENT);
  EXPECT_GE(parent, 0) << ErrnoName(errno);
  if (parent >= 0) {
    EXPECT_EQ(InoOfFd(parent), InoOf("/proc/self/ns/pid"));
    EXPECT_NE(InoOfFd(parent), InoOfFd(child_fd));
    EXPECT_EQ(ioctl(parent, NS_GET_NSTYPE), CLONE_NEWPID);
    close(parent);
  }
  close(child_fd);
  close(go[1]);
  EXPECT_EQ(WaitCode(child), 0);
}

}  // namespace
}  // namespace syscall_test
