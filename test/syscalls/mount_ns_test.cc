// Conformance tests for mount namespaces (mount_namespaces(7)):
// unshare(CLONE_NEWNS) and clone(CLONE_NEWNS) give a copy of the caller's
// mounts, after which a mount or unmount in one namespace is not seen in
// the other; setns(2) through /proc/PID/ns/mnt enters one again; and
// /proc/PID/mounts shows the namespace of PID. Every test changes mounts
// only in namespaces of its own children (each makes its mounts private
// first, as unshare(1) does, so that nothing reaches the host's natively).
// They need CAP_SYS_ADMIN; each child returns a distinct code per failed
// check.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/mount_util.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// Blocks until the other side writes a byte or closes; false on EOF.
bool Await(int fd) {
  char b;
  return read(fd, &b, 1) == 1;
}

bool Signal(int fd) { return write(fd, "x", 1) == 1; }

// Drops `cap` from the effective set.
bool DropCap(int cap) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2] = {};
  if (syscall(SYS_capget, &h, d) != 0) return false;
  d[cap / 32].effective &= ~(1u << (cap % 32));
  return syscall(SYS_capset, &h, d) == 0;
}

TEST_F(MountNsTest, UnshareThenMountIsInvisibleToTheParent) {
  const std::string a = dir_ + "/a";
  int ready[2], done[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(done), 0);
  const std::string before = NsLink("self");
  const pid_t c = fork();
  ASSERT_GE(c, 0) << ErrnoName(errno);
  if (c == 0) {
    close(ready[0]);
    close(done[1]);
    if (!OwnNamespace()) _exit(1);
    if (NsLink("self") == before || NsLink("self").rfind("mnt:[", 0) != 0) _exit(2);
    if (!MountTmpfs(a)) _exit(3);
    if (!Touch(a + "/x")) _exit(4);
    if (!MountsShow("self", a)) _exit(5);
    if (!Signal(ready[1])) _exit(6);
    Await(done[0]);
    _exit(0);
  }
  close(ready[1]);
  close(done[0]);
  ASSERT_TRUE(Await(ready[0]));
  // The parent's namespace: no mount there, the file in the child's tmpfs
  // not in the directory underneath.
  EXPECT_FALSE(Exists(a + "/x"));
  EXPECT_FALSE(MountsShow("self", a));
  // /proc/PID/mounts is PID's namespace's.
  EXPECT_TRUE(MountsShow(std::to_string(c), a));
  EXPECT_NE(NsLink(std::to_string(c)), NsLink("self"));
  EXPECT_EQ(NsLink("self"), before);
  close(done[1]);
  EXPECT_EQ(WaitCode(c), 0);
  close(ready[0]);
  EXPECT_FALSE(Exists(a + "/x"));
}

TEST_F(MountNsTest, ClonedNamespaceHasMountsOfCloneTimeOnly) {
  const std::string a = dir_ + "/a", b = dir_ + "/b", cdir = dir_ + "/c";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a) || !Touch(a + "/x")) return 2;
    int to_child[2], to_parent[2];
    if (pipe(to_child) != 0 || pipe(to_parent) != 0) return 3;
    const pid_t inner = ForkWith(CLONE_NEWNS);
    if (inner < 0) return 4;
    if (inner == 0) {
      // A copy of the parent's mounts at the clone: a's tmpfs is here.
      if (!Exists(a + "/x") || !MountsShow("self", a)) _exit(10);
      if (!MountTmpfs(cdir) || !Touch(cdir + "/z")) _exit(11);
      if (!Signal(to_parent[1])) _exit(12);
      if (!Await(to_child[0])) _exit(13);
      // The parent's later mount is not.
      if (Exists(b + "/y") || MountsShow("self", b)) _exit(14);
      _exit(0);
    }
    if (!Await(to_parent[0])) return 5;
    if (!MountTmpfs(b) || !Touch(b + "/y")) return 6;
    // The child's mount is not here.
    if (Exists(cdir + "/z") || MountsShow("self", cdir)) return 7;
    if (NsLink("self") == NsLink(std::to_string(inner))) return 8;
    if (!Signal(to_child[1])) return 9;
    const int code = WaitCode(inner);
    return code == 0 ? 0 : 100 + code % 100;
  });
  EXPECT_EQ(result, 0);
}

TEST_F(MountNsTest, SetnsBackAndForth) {
  const std::string a = dir_ + "/a";
  const pid_t c = fork();
  ASSERT_GE(c, 0) << ErrnoName(errno);
  if (c == 0) {
    const int first = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (first < 0) _exit(1);
    const std::string first_link = NsLink("self");
    if (!OwnNamespace()) _exit(2);
    if (!MountTmpfs(a) || !Touch(a + "/x")) _exit(3);
    const int second = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (second < 0) _exit(4);
    const std::string second_link = NsLink("self");
    if (second_link == first_link) _exit(5);
    // A file of another type than the one asked for.
    if (setns(first, CLONE_NEWUTS) != -1 || errno != EINVAL) _exit(6);
    if (setns(first, CLONE_NEWNS) != 0) _exit(7);
    if (NsLink("self") != first_link) _exit(8);
    if (Exists(a + "/x") || MountsShow("self", a)) _exit(9);
    // Root and working directory are the namespace's root now.
    char cwd[64] = {};
    if (getcwd(cwd, sizeof(cwd)) == nullptr || strcmp(cwd, "/") != 0) _exit(10);
    if (setns(second, 0) != 0) _exit(11);
    if (NsLink("self") != second_link) _exit(12);
    if (!Exists(a + "/x") || !MountsShow("self", a)) _exit(13);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(c), 0);
}

// setns into a mount namespace asks whether another task shares the
// caller's fs context (Linux: fs->users != 1), not whether something holds
// it for a moment: a parent reading the child's /proc/PID/{status,
// mountinfo,cwd} meanwhile never makes it fail (review of f2a3505: those
// readers copy the context's pointer, and setns answered EINVAL).
TEST_F(MountNsTest, SetnsWhileAnotherProcessReadsItsProc) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0) << ErrnoName(errno);
  const pid_t c = fork();
  ASSERT_GE(c, 0) << ErrnoName(errno);
  if (c == 0) {
    close(ready[0]);
    const int own = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (own < 0 || !Signal(ready[1])) _exit(1);
    for (int i = 0; i < 3000; ++i) {
      if (setns(own, CLONE_NEWNS) != 0) _exit(2);
    }
    _exit(0);
  }
  close(ready[1]);
  ASSERT_TRUE(Await(ready[0]));
  close(ready[0]);
  const std::string proc = "/proc/" + std::to_string(c);
  int status = 0;
  while (waitpid(c, &status, WNOHANG) == 0) {
    for (const char* f : {"/status", "/mountinfo"}) {
      std::ifstream in(proc + f);
      std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }
    char buf[256];
    readlink((proc + "/cwd").c_str(), buf, sizeof(buf));
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "wait status " << status << " (exit 2: setns failed while its /proc was read)";
}

TEST_F(MountNsTest, UmountInOneLeavesTheOthers) {
  const std::string a = dir_ + "/a";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a) || !Touch(a + "/x")) return 2;
    const pid_t inner = ForkWith(CLONE_NEWNS);
    if (inner < 0) return 3;
    if (inner == 0) {
      if (umount2(a.c_str(), 0) != 0) _exit(10);
      if (Exists(a + "/x") || MountsShow("self", a)) _exit(11);
      // Not a mount any more (here).
      if (umount2(a.c_str(), 0) != -1 || errno != EINVAL) _exit(12);
      _exit(0);
    }
    const int code = WaitCode(inner);
    if (code != 0) return 100 + code % 100;
    if (!Exists(a + "/x") || !MountsShow("self", a)) return 4;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

TEST_F(MountNsTest, MountAndUmountErrors) {
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  const int result = InOwnNamespace([&] {
    // Not a mount point: neither unmounted nor made private.
    if (umount2(a.c_str(), 0) != -1 || errno != EINVAL) return 2;
    if (mount("none", a.c_str(), nullptr, MS_PRIVATE, nullptr) != -1 || errno != EINVAL) return 3;
    if (mount("none", "/", nullptr, MS_SHARED | MS_PRIVATE, nullptr) != -1 || errno != EINVAL) {
      return 4;
    }
    if (umount2(a.c_str(), 0x80) != -1 || errno != EINVAL) return 5;  // an unknown flag
    if (mount("none", a.c_str(), "no_such_fs_type", 0, nullptr) != -1 || errno != ENODEV) {
      return 6;
    }
    if (mount("none", (a + "/missing").c_str(), "tmpfs", 0, nullptr) != -1 || errno != ENOENT) {
      return 7;
    }
    if (mount("tmpfs", a.c_str(), "tmpfs", 0, "no_such_option") != -1 || errno != EINVAL) {
      return 8;
    }
    // A mount with one below it: busy, unless detached with it.
    if (!MountTmpfs(a) || mkdir((a + "/sub").c_str(), 0755) != 0) return 9;
    if (!MountTmpfs(a + "/sub") || !Touch(a + "/sub/y")) return 10;
    if (umount2(a.c_str(), 0) != -1 || errno != EBUSY) return 11;
    if (umount2(a.c_str(), MNT_DETACH) != 0) return 12;
    if (Exists(a + "/sub") || MountsShow("self", a) || MountsShow("self", a + "/sub")) return 13;
    // A propagation change of a mount's root is accepted.
    if (!MountTmpfs(b)) return 14;
    for (unsigned long type : {MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE}) {
      if (mount("none", b.c_str(), nullptr, type | MS_REC, nullptr) != 0) return 15;
    }
    // MNT_EXPIRE: EAGAIN first, then the unmount.
    if (umount2(b.c_str(), MNT_EXPIRE) != -1 || errno != EAGAIN) return 16;
    if (umount2(b.c_str(), MNT_EXPIRE) != 0 || MountsShow("self", b)) return 17;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

TEST_F(MountNsTest, BindMountOfADirectory) {
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a) || mkdir((a + "/d").c_str(), 0755) != 0 || !Touch(a + "/d/x")) return 2;
    if (mount((a + "/d").c_str(), b.c_str(), nullptr, MS_BIND, nullptr) != 0) return 3;
    // The same files through both.
    if (!Exists(b + "/x") || !Touch(b + "/y") || !Exists(a + "/d/y")) return 4;
    if (umount2(b.c_str(), 0) != 0 || Exists(b + "/x")) return 5;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

TEST_F(MountNsTest, WithoutCapSysAdminEperm) {
  const std::string a = dir_ + "/a";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a)) return 1;
    if (!DropCap(CAP_SYS_ADMIN)) return 2;
    if (unshare(CLONE_NEWNS) != -1 || errno != EPERM) return 3;
    if (mount("tmpfs", a.c_str(), "tmpfs", 0, nullptr) != -1 || errno != EPERM) return 4;
    if (umount2(a.c_str(), 0) != -1 || errno != EPERM) return 5;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

// setns(CLONE_NEWNS) is EINVAL exactly while another task uses the
// caller's fs context (mntns_install(): fs->users != 1): a clone(CLONE_FS)
// child makes it shared, through its exec too (execve unshares the fd
// table, not the fs context); the child's unshare(CLONE_FS) or exit ends
// that. The count must go down as well as up.
TEST_F(MountNsTest, SetnsCountsTheTasksSharingTheFsContext) {
  const pid_t c = fork();
  ASSERT_GE(c, 0) << ErrnoName(errno);
  if (c == 0) {
    const int own = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    int go[2], done[2];
    if (own < 0 || pipe(go) != 0 || pipe(done) != 0) _exit(1);
    const pid_t sharer = ForkWith(CLONE_FS);
    if (sharer < 0) _exit(2);
    if (sharer == 0) {
      close(go[1]);
      if (!Await(go[0]) || unshare(CLONE_FS) != 0 || !Signal(done[1])) _exit(1);
      Await(go[0]);
      _exit(0);
    }
    if (setns(own, CLONE_NEWNS) != -1 || errno != EINVAL) _exit(3);
    if (!Signal(go[1]) || !Await(done[0])) _exit(4);
    if (setns(own, CLONE_NEWNS) != 0) _exit(5);  // it unshared
    close(go[1]);
    if (WaitCode(sharer) != 0) _exit(6);
    // A sharer that execs: the exec closes `execd`'s write end (cloexec).
    int execd[2];
    if (pipe2(execd, O_CLOEXEC) != 0) _exit(7);
    const pid_t sleeper = ForkWith(CLONE_FS);
    if (sleeper < 0) _exit(8);
    if (sleeper == 0) {
      execl("/bin/sleep", "sleep", "1000", static_cast<char*>(nullptr));
      _exit(1);
    }
    close(execd[1]);
    const bool execd_ok = !Await(execd[0]);  // EOF: exec'd
    const bool shared = setns(own, CLONE_NEWNS) == -1 && errno == EINVAL;
    kill(sleeper, SIGKILL);
    if (WaitCode(sleeper) != 200 + SIGKILL) _exit(9);
    if (!execd_ok || !shared) _exit(10);
    if (setns(own, CLONE_NEWNS) != 0) _exit(12);  // it exited
    // A sharer that exits at once.
    const pid_t quick = ForkWith(CLONE_FS);
    if (quick == 0) _exit(0);
    if (quick < 0 || WaitCode(quick) != 0) _exit(13);
    if (setns(own, CLONE_NEWNS) != 0) _exit(14);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(c), 0);
}

// umount2's busy check and /proc/PID look at other tasks' root, working
// directory and open files while those tasks unshare(CLONE_FS|CLONE_FILES)
// and exit: the sentry read the task's pointers while the exit dropped them
// (issue 13). Unmounts an idle tmpfs many times under that churn.
TEST_F(MountNsTest, UmountWhileThreadsUnshareAndExit) {
  const std::string a = dir_ + "/a";
  const int result = InOwnNamespace([&] {
    std::atomic<bool> stop{false};
    auto churn = [&stop] {
      while (!stop.load()) {
        std::thread t([] { syscall(SYS_unshare, CLONE_FS | CLONE_FILES); });
        t.join();
      }
    };
    auto look = [&stop] {
      char buf[4096];
      while (!stop.load()) {
        DIR* d = opendir("/proc/self/task");
        if (d == nullptr) continue;
        while (dirent* e = readdir(d)) {
          if (e->d_name[0] == '.') continue;
          const std::string p = std::string("/proc/self/task/") + e->d_name;
          for (const char* f : {"/status", "/mountinfo"}) {
            const int fd = open((p + f).c_str(), O_RDONLY);
            if (fd < 0) continue;
            while (read(fd, buf, sizeof(buf)) > 0) {
            }
            close(fd);
          }
          if (readlink((p + "/cwd").c_str(), buf, sizeof(buf)) < 0) continue;
          if (DIR* fds = opendir((p + "/fd").c_str())) closedir(fds);
        }
        closedir(d);
      }
    };
    std::thread c1(churn), c2(churn), l1(look);
    int bad = 0;
    for (int i = 0; i < 300 && bad == 0; ++i) {
      if (!MountTmpfs(a)) {
        bad = 2;
      } else if (umount2(a.c_str(), 0) != 0) {
        bad = 3;
      }
    }
    stop = true;
    c1.join();
    c2.join();
    l1.join();
    return bad;
  });
  EXPECT_EQ(result, 0);
}

}  // namespace
}  // namespace syscall_test
