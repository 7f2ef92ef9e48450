// Conformance tests for changing a mount namespace's tree: mount(MS_MOVE),
// mount(MS_REMOUNT) with and without MS_BIND, recursive binds
// (MS_BIND|MS_REC) and pivot_root(2), with their errors (do_move_mount(),
// do_reconfigure_mnt(), do_loopback(), pivot_root() in fs/namespace.c).
// Each runs in a child in a private mount namespace of its own; a change
// in one namespace is not seen in another. They need CAP_SYS_ADMIN; each
// child returns a distinct code per failed check.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/mount_util.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/socket_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

int PivotRoot(const std::string& new_root, const std::string& put_old) {
  return static_cast<int>(syscall(SYS_pivot_root, new_root.c_str(), put_old.c_str()));
}

// A tmpfs on `dir` with a directory "sub" that has a tmpfs of its own
// holding the file "y".
bool MountWithASubmount(const std::string& dir) {
  return MountTmpfs(dir) && mkdir((dir + "/sub").c_str(), 0755) == 0 &&
         MountTmpfs(dir + "/sub") && Touch(dir + "/sub/y");
}

TEST_F(MountNsTest, MoveTakesTheSubmountsAlongInOneNamespaceOnly) {
  const std::string a = dir_ + "/a", b = dir_ + "/b", c = dir_ + "/c";
  const pid_t outer = fork();
  ASSERT_GE(outer, 0) << ErrnoName(errno);
  if (outer == 0) {
    if (!OwnNamespace() || !MountWithASubmount(a)) _exit(1);
    const pid_t inner = ForkWith(CLONE_NEWNS);
    if (inner < 0) _exit(2);
    if (inner == 0) {
      if (mount(a.c_str(), b.c_str(), nullptr, MS_MOVE, nullptr) != 0) _exit(10);
      if (!Exists(b + "/sub/y") || Exists(a + "/sub")) _exit(11);
      if (!MountsShow("self", b) || !MountsShow("self", b + "/sub")) _exit(12);
      if (MountsShow("self", a) || MountsShow("self", a + "/sub")) _exit(13);
      // Not a mount's root; below itself; a directory onto a file.
      if (mount(c.c_str(), a.c_str(), nullptr, MS_MOVE, nullptr) != -1 || errno != EINVAL) {
        _exit(14);
      }
      if (mount(b.c_str(), (b + "/sub").c_str(), nullptr, MS_MOVE, nullptr) != -1 ||
          errno != ELOOP) {
        _exit(15);
      }
      if (!Touch(c + "/f")) _exit(16);
      const int r = mount(b.c_str(), (c + "/f").c_str(), nullptr, MS_MOVE, nullptr);
      unlink((c + "/f").c_str());
      if (r != -1 || errno != EINVAL) _exit(17);
      if (mount(nullptr, a.c_str(), nullptr, MS_MOVE, nullptr) != -1 || errno != EINVAL) {
        _exit(18);
      }
      _exit(0);
    }
    const int code = WaitCode(inner);
    if (code != 0) _exit(100 + code % 100);
    // The move was the other namespace's.
    if (!Exists(a + "/sub/y") || Exists(b + "/sub")) _exit(3);
    if (!MountsShow("self", a + "/sub") || MountsShow("self", b)) _exit(4);
    _exit(0);
  }
  EXPECT_EQ(WaitCode(outer), 0);
}

TEST_F(MountNsTest, RemountOfABindMakesItReadOnly) {
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a) || mkdir((a + "/d").c_str(), 0755) != 0) return 1;
    if (mount(a.c_str(), b.c_str(), nullptr, MS_BIND, nullptr) != 0) return 2;
    if (mount(nullptr, b.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
      return 3;
    }
    if (Touch(b + "/x") || errno != EROFS) return 4;
    if (mkdir((b + "/e").c_str(), 0755) != -1 || errno != EROFS) return 5;
    // The bind only: the first mount stays writable.
    if (!Touch(a + "/x") || !Exists(b + "/x")) return 6;
    if (MountOptions(b).rfind("ro,", 0) != 0 || MountOptions(a).rfind("rw,", 0) != 0) return 7;
    // Not a mount's root.
    if (mount(nullptr, (a + "/d").c_str(), nullptr, MS_REMOUNT | MS_BIND, nullptr) != -1 ||
        errno != EINVAL) {
      return 8;
    }
    // Writable again, then the first mount read-only without MS_BIND.
    if (mount(nullptr, b.c_str(), nullptr, MS_REMOUNT | MS_BIND, nullptr) != 0) return 9;
    if (!Touch(b + "/y") || MountOptions(b).rfind("rw,", 0) != 0) return 10;
    if (mount(nullptr, a.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) != 0) return 11;
    if (Touch(a + "/z") || errno != EROFS) return 12;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

TEST_F(MountNsTest, RecursiveBindTakesTheSubmountsAlong) {
  const std::string a = dir_ + "/a", b = dir_ + "/b", c = dir_ + "/c";
  const int result = InOwnNamespace([&] {
    if (!MountWithASubmount(a)) return 1;
    if (mount(a.c_str(), b.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) return 2;
    if (!Exists(b + "/sub/y") || !MountsShow("self", b + "/sub")) return 3;
    // A plain bind does not: the directory underneath is empty.
    if (mount(a.c_str(), c.c_str(), nullptr, MS_BIND, nullptr) != 0) return 4;
    if (!Exists(c + "/sub") || Exists(c + "/sub/y") || MountsShow("self", c + "/sub")) return 5;
    // The copies are mounts of their own: busy while one is below.
    if (umount2(b.c_str(), 0) != -1 || errno != EBUSY) return 6;
    if (umount2((b + "/sub").c_str(), 0) != 0 || Exists(b + "/sub/y")) return 7;
    if (!Exists(a + "/sub/y")) return 8;
    if (umount2(b.c_str(), 0) != 0) return 9;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

TEST_F(MountNsTest, PivotRootChecksThenSwapsTheRoots) {
  // Everything under a tmpfs of the test's own (c), whatever /tmp is.
  const std::string base = dir_ + "/c", nr = base + "/new", other = base + "/other";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(base) || !Touch(base + "/marker")) return 1;
    if (mkdir(nr.c_str(), 0755) != 0 || mkdir(other.c_str(), 0755) != 0) return 2;
    // new_root not a mount point yet.
    if (mkdir((nr + "/old").c_str(), 0755) != 0) return 3;
    if (PivotRoot(nr, nr + "/old") != -1 || errno != EINVAL) return 4;
    if (!MountTmpfs(nr) || mkdir((nr + "/old").c_str(), 0755) != 0 || !Touch(nr + "/mine")) {
      return 5;
    }
    // put_old not below new_root; a file for either.
    if (PivotRoot(nr, other) != -1 || errno != EINVAL) return 6;
    if (PivotRoot(base + "/marker", nr + "/old") != -1 || errno != ENOTDIR) return 7;
    if (PivotRoot(nr, nr + "/mine") != -1 || errno != ENOTDIR) return 8;
    if (PivotRoot(nr + "/missing", nr + "/old") != -1 || errno != ENOENT) return 9;
    if (chdir("/") != 0) return 10;
    if (PivotRoot(nr, nr + "/old") != 0) return 11;
    // The new root's files at /, the old root at /old; the working
    // directory (the old root) moved to the new root.
    if (!Exists("/mine") || !Exists("mine") || !Exists("/old" + base + "/marker")) return 12;
    char cwd[64] = {};
    if (getcwd(cwd, sizeof(cwd)) == nullptr || std::string(cwd) != "/") return 13;
    // The old root, now a mount below: new_root is the old root's mount.
    if (PivotRoot("/", "/old") != -1 || errno != EBUSY) return 14;
    if (umount2("/old", MNT_DETACH) != 0 || Exists("/old" + base)) return 15;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

TEST_F(MountNsTest, PivotRootOntoItselfThenUnmountTheOldRoot) {
  // runc's way: pivot_root(".", ".") stacks the old root on the new one,
  // and umount2(".") takes the topmost away.
  const std::string nr = dir_ + "/a";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(nr) || !Touch(nr + "/mine")) return 1;
    if (chdir(nr.c_str()) != 0) return 2;
    if (PivotRoot(".", ".") != 0) return 3;
    if (umount2(".", MNT_DETACH) != 0) return 4;
    if (chdir("/") != 0) return 5;
    if (!Exists("/mine") || Exists(nr) || Exists("/proc/self")) return 6;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

TEST_F(MountNsTest, UmountIsBusyWhileAFileOrAWorkingDirectoryIsOnIt) {
  const std::string a = dir_ + "/a";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a)) return 2;
    const int fd = open((a + "/x").c_str(), O_CREAT | O_RDWR, 0644);
    if (fd < 0) return 3;
    if (umount2(a.c_str(), 0) != -1 || errno != EBUSY) return 4;
    if (umount2(a.c_str(), MNT_EXPIRE) != -1 || errno != EBUSY) return 5;
    close(fd);
    if (chdir(a.c_str()) != 0) return 6;
    if (umount2(a.c_str(), 0) != -1 || errno != EBUSY) return 7;
    if (chdir("/") != 0 || umount2(a.c_str(), 0) != 0) return 8;
    // Detached, an open file keeps working.
    if (!MountTmpfs(a)) return 9;
    const int kept = open((a + "/y").c_str(), O_CREAT | O_RDWR, 0644);
    if (kept < 0 || umount2(a.c_str(), MNT_DETACH) != 0 || Exists(a + "/y")) return 10;
    char got = 0;
    if (write(kept, "z", 1) != 1 || pread(kept, &got, 1, 0) != 1 || got != 'z') return 11;
    close(kept);
    return 0;
  });
  EXPECT_EQ(result, 0);
}

// A mapping of a file keeps its mount busy after the descriptor is closed
// (the vma's vm_file holds the mount), as a file passed in an SCM_RIGHTS
// message still unread does.
TEST_F(MountNsTest, UmountIsBusyWhileAFileIsMappedOrInFlight) {
  const std::string a = dir_ + "/a";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a)) return 2;
    int fd = open((a + "/x").c_str(), O_CREAT | O_RDWR, 0644);
    if (fd < 0 || ftruncate(fd, 4096) != 0) return 3;
    void* p = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return 4;
    if (umount2(a.c_str(), 0) != -1 || errno != EBUSY) return 5;
    if (munmap(p, 4096) != 0 || umount2(a.c_str(), 0) != 0) return 6;
    if (!MountTmpfs(a)) return 7;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 8;
    fd = open((a + "/y").c_str(), O_CREAT | O_RDWR, 0644);
    if (fd < 0 || SendFds(sv[0], {fd}) != 1) return 9;
    close(fd);
    if (umount2(a.c_str(), 0) != -1 || errno != EBUSY) return 10;
    close(sv[0]);
    close(sv[1]);  // the message and its file go
    if (umount2(a.c_str(), 0) != 0) return 11;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

// mount(MS_REMOUNT|MS_RDONLY) is EBUSY while a file is open for writing
// on the mount (mnt_make_readonly() with MS_BIND), or on any mount of its
// filesystem without MS_BIND (sb_prepare_remount_readonly()); readers do
// not count, and once the writer closes the remount works.
TEST_F(MountNsTest, RemountReadOnlyIsBusyWhileAFileIsOpenForWriting) {
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a)) return 2;
    const int w = open((a + "/f").c_str(), O_CREAT | O_WRONLY, 0644);
    const int r = open((a + "/f").c_str(), O_RDONLY);
    if (w < 0 || r < 0) return 3;
    auto remount = [](const std::string& dir, unsigned long flags) {
      return mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | flags, nullptr);
    };
    if (remount(a, 0) != -1 || errno != EBUSY) return 4;
    if (remount(a, MS_BIND) != -1 || errno != EBUSY) return 5;
    if (!Touch(a + "/g")) return 6;  // still writable
    // A bind of it has no writer of its own, but shares the filesystem's.
    if (mount(a.c_str(), b.c_str(), nullptr, MS_BIND, nullptr) != 0) return 7;
    if (remount(b, MS_BIND) != 0) return 8;
    if (remount(b, 0) != -1 || errno != EBUSY) return 9;
    close(w);
    if (remount(a, 0) != 0) return 10;
    if (open((a + "/h").c_str(), O_CREAT | O_WRONLY, 0644) != -1 || errno != EROFS) return 11;
    close(r);
    if (umount2(b.c_str(), 0) != 0) return 12;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

// A mount below a renamed directory moves with it (d_move() keeps it on
// its dentry): it is reached and shown at the new path, and unmounted
// there; the old path is gone. Old seedsc: the mount was lost (exit 4).
TEST_F(MountNsTest, RenamingADirectoryAboveAMountPointTakesTheMountAlong) {
  const std::string a = dir_ + "/a";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a) || mkdir((a + "/d").c_str(), 0755) != 0 ||
        mkdir((a + "/d/sub").c_str(), 0755) != 0 || !MountTmpfs(a + "/d/sub") ||
        !Touch(a + "/d/sub/y")) {
      return 2;
    }
    if (rename((a + "/d").c_str(), (a + "/e").c_str()) != 0) return 3;
    if (!Exists(a + "/e/sub/y")) return 4;
    if (!MountsShow("self", a + "/e/sub") || MountsShow("self", a + "/d/sub")) return 5;
    if (rename((a + "/e/sub").c_str(), (a + "/e/sub2").c_str()) != -1 || errno != EBUSY) {
      return 6;
    }
    if (umount2((a + "/e/sub").c_str(), 0) != 0 || Exists(a + "/e/sub/y")) return 7;
    // RENAME_EXCHANGE moves both, each with its mount.
    if (mkdir((a + "/f").c_str(), 0755) != 0 || mkdir((a + "/f/in").c_str(), 0755) != 0 ||
        !MountTmpfs(a + "/e/sub") || !Touch(a + "/e/sub/y") || !MountTmpfs(a + "/f/in") ||
        !Touch(a + "/f/in/z")) {
      return 8;
    }
    if (syscall(SYS_renameat2, AT_FDCWD, (a + "/e").c_str(), AT_FDCWD, (a + "/f").c_str(),
                RENAME_EXCHANGE) != 0) {
      return 9;
    }
    if (!Exists(a + "/f/sub/y") || !Exists(a + "/e/in/z") ||
        !MountsShow("self", a + "/f/sub") || !MountsShow("self", a + "/e/in")) {
      return 10;
    }
    return 0;
  });
  EXPECT_EQ(result, 0);
}

}  // namespace
}  // namespace syscall_test
