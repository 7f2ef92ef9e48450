// Conformance tests for what a new mount namespace's copy keeps
// (copy_mnt_ns(), copy_tree() in fs/namespace.c): the caller's working
// directory moves to the copy of its mount even when it was removed, and
// the copy's /dev/pts behaves as the original's (a pty's node goes when
// its master closes). Each runs in a child in private mount namespaces of
// its own; they need CAP_SYS_ADMIN; each child returns a distinct code per
// failed check.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/mount_util.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// A working directory that was removed moves to the copy of its mount
// all the same: ".." from it leads into the new namespace's tree (a mount
// made there is crossed), and it keeps the copy of its mount busy. (The
// sentry looked the directory up again by name, found nothing and left
// the working directory on the old namespace's mount.)
TEST_F(MountNsTest, UnshareMovesARemovedWorkingDirectory) {
  const std::string a = dir_ + "/a";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a) || mkdir((a + "/gone").c_str(), 0755) != 0 ||
        mkdir((a + "/y").c_str(), 0755) != 0) {
      return 2;
    }
    if (chdir((a + "/gone").c_str()) != 0 || rmdir((a + "/gone").c_str()) != 0) return 3;
    if (unshare(CLONE_NEWNS) != 0) return 4;
    if (!MountTmpfs(a + "/y") || !Touch(a + "/y/z")) return 5;
    if (!Exists("../y/z")) return 6;  // through the new namespace's mount
    if (umount2((a + "/y").c_str(), 0) != 0) return 7;
    if (Exists("../y/z")) return 8;
    if (umount2(a.c_str(), 0) != -1 || errno != EBUSY) return 9;  // our cwd is on it
    return 0;
  });
  EXPECT_EQ(result, 0);
}

// The copy's devpts drops a pty's node when its master closes, as the
// original's does (pty_close(): devpts_pty_kill()), though a replica
// still holds it open. (The copy's mount was not registered with devpts,
// so its cached /dev/pts/N stayed.)
TEST_F(MountNsTest, CopiedDevptsDropsTheNodeOfAClosedPty) {
  const int result = InOwnNamespace([&] {
    const int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0) return 2;
    if (grantpt(master) != 0 || unlockpt(master) != 0) return 3;
    const char* name = ptsname(master);
    if (name == nullptr) return 4;
    const std::string pts = name;
    const int replica = open(pts.c_str(), O_RDWR | O_NOCTTY);
    if (replica < 0) return 5;
    if (!Exists(pts)) return 6;
    close(master);
    if (Exists(pts)) return 7;
    close(replica);
    return 0;
  });
  EXPECT_EQ(result, 0);
}

}  // namespace
}  // namespace syscall_test
