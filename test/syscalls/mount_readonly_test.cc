// Conformance tests for read-only mounts and filesystems: a remount
// without MS_BIND changes the filesystem, which every mount of it shares
// (reconfigure_super(): SB_RDONLY), one with MS_BIND only that mount
// (MNT_READONLY); writes are refused if either says so
// (__mnt_is_readonly()); and what counts as a writer that keeps a
// filesystem from going read-only (FMODE_WRITER). Each runs in a child in
// a private mount namespace of its own. They need CAP_SYS_ADMIN; each
// child returns a distinct code per failed check.
#include <errno.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/mount_util.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

int Remount(const std::string& dir, unsigned long flags) {
  return mount(nullptr, dir.c_str(), nullptr, MS_REMOUNT | flags, nullptr);
}

// Whether creating `p` fails with EROFS.
bool Refused(const std::string& p) {
  const int fd = open(p.c_str(), O_CREAT | O_WRONLY, 0644);
  if (fd >= 0) close(fd);
  return fd < 0 && errno == EROFS;
}

// The last mount at `dir`: its superblock options (mountinfo's last
// field), or the options /proc/self/mounts shows (`mounts`).
std::string OptionsOf(const std::string& dir, bool mounts) {
  std::ifstream f(mounts ? "/proc/self/mounts" : "/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(f, line)) {
    std::istringstream fields(line);
    std::string word, where, last;
    if (mounts) {
      fields >> word >> where >> word >> last;
    } else {
      fields >> word >> word >> word >> word >> where;
      while (fields >> word) last = word;
    }
    if (where == dir) found = last;
  }
  return found;
}

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// A remount without MS_BIND makes the filesystem read-only: a bind of it
// and another namespace's copy refuse writes too, though their own flags
// stay "rw" (mountinfo's sixth field; /proc/mounts shows "ro"); making
// the bind's own flag "rw" again changes nothing while the filesystem is
// read-only. MS_BIND|MS_RDONLY makes one mount read-only. Old seedsc: the
// bind stayed writable (exit 5).
TEST_F(MountNsTest, RemountWithoutBindMakesEveryMountOfTheFilesystemReadOnly) {
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a)) return 2;
    if (mount(a.c_str(), b.c_str(), nullptr, MS_BIND, nullptr) != 0) return 3;
    if (Remount(a, MS_RDONLY) != 0) return 4;
    if (!Refused(b + "/x")) return 5;
    if (!StartsWith(MountOptions(b), "rw") || !StartsWith(OptionsOf(b, false), "ro")) return 6;
    if (!StartsWith(MountOptions(a), "ro")) return 7;
    if (!StartsWith(OptionsOf(b, true), "ro")) return 8;
    if (Remount(b, MS_BIND) != 0 || !Refused(b + "/x")) return 9;
    if (Remount(a, 0) != 0 || !Touch(b + "/x") || !Touch(a + "/y")) return 10;
    // From another namespace's copy of the mount.
    const pid_t child = ForkWith(CLONE_NEWNS);
    if (child < 0) return 11;
    if (child == 0) _exit(Remount(a, MS_RDONLY) == 0 ? 0 : 1);
    if (WaitCode(child) != 0) return 12;
    if (!Refused(a + "/z") || !Refused(b + "/z")) return 13;
    if (Remount(a, 0) != 0 || !Touch(a + "/z")) return 14;
    if (Remount(b, MS_BIND | MS_RDONLY) != 0 || !Refused(b + "/w") || !Touch(a + "/w")) {
      return 15;
    }
    if (!StartsWith(OptionsOf(b, false), "rw")) return 16;
    return 0;
  });
  EXPECT_EQ(result, 0);
}

// A FIFO or device node open for writing is no writer of its filesystem
// (do_dentry_open() takes write access for other files only:
// FMODE_WRITER), so a read-only remount goes ahead, with MS_BIND and
// without; they can still be written, and opened for writing again
// (may_open() refuses only other files on a read-only mount).
TEST_F(MountNsTest, FifosAndDevicesOpenForWritingLetARemountReadOnly) {
  const std::string a = dir_ + "/a", fifo = a + "/p", dev = a + "/null";
  const int result = InOwnNamespace([&] {
    if (!MountTmpfs(a) || mkfifo(fifo.c_str(), 0644) != 0 || !Touch(dev)) return 2;
    if (mount("/dev/null", dev.c_str(), nullptr, MS_BIND, nullptr) != 0) return 3;
    const int r = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
    const int w = open(fifo.c_str(), O_WRONLY);
    const int rw = open(fifo.c_str(), O_RDWR);
    const int d = open(dev.c_str(), O_WRONLY);
    if (r < 0 || w < 0 || rw < 0 || d < 0) return 4;
    if (Remount(a, MS_RDONLY) != 0) return 5;
    if (Remount(dev, MS_BIND | MS_RDONLY) != 0) return 6;
    char byte = 0;
    if (write(w, "x", 1) != 1 || write(rw, "y", 1) != 1 || read(r, &byte, 1) != 1) return 7;
    if (write(d, "z", 1) != 1) return 8;
    const int w2 = open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    const int d2 = open(dev.c_str(), O_WRONLY);
    if (w2 < 0 || d2 < 0) return 9;
    if (!Refused(a + "/q")) return 10;
    for (int fd : {r, w, rw, d, w2, d2}) close(fd);
    return 0;
  });
  EXPECT_EQ(result, 0);
}

// statfs(2)'s f_flags of `p` (fstatfs of an fd on it if `by_fd`), or ~0
// if the call fails.
unsigned long FlagsOf(const std::string& p, bool by_fd = false) {
  struct statfs s;
  if (by_fd) {
    const int fd = open(p.c_str(), O_RDONLY | O_DIRECTORY);
    const int rc = fd < 0 ? -1 : fstatfs(fd, &s);
    if (fd >= 0) close(fd);
    if (rc != 0) return ~0UL;
  } else if (statfs(p.c_str(), &s) != 0) {
    return ~0UL;
  }
  return static_cast<unsigned long>(s.f_flags);
}

// statfs(2) and fstatfs(2) report the mount's flags in f_flags
// (calculate_f_flags(): ST_VALID, the mount's own ST_RDONLY, ST_NOSUID,
// ST_NODEV, ST_NOEXEC and atime flags, and ST_RDONLY of a read-only
// filesystem), each mount its own: a bind remounted read-only says so, the
// mount it was made from does not; after a remount without MS_BIND every
// mount of the filesystem says ST_RDONLY. Old seedsc: f_flags was 0 for a
// tmpfs whatever its mount's flags (exit 3).
TEST_F(MountNsTest, StatfsReportsTheMountsFlags) {
  const std::string a = dir_ + "/a", b = dir_ + "/b";
  constexpr unsigned long kValid = 0x0020;  // ST_VALID
  constexpr unsigned long kShown = ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_NOATIME |
                                   ST_NODIRATIME | ST_RELATIME | kValid;
  const int result = InOwnNamespace([&] {
    const unsigned long kSecure = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (mount("tmpfs", a.c_str(), "tmpfs", MS_RDONLY | kSecure, "mode=0755") != 0) return 2;
    const unsigned long want = ST_RDONLY | ST_NOSUID | ST_NODEV | ST_NOEXEC | ST_RELATIME | kValid;
    if ((FlagsOf(a) & kShown) != want || (FlagsOf(a, true) & kShown) != want) return 3;
    if (umount2(a.c_str(), 0) != 0 || !MountTmpfs(a)) return 4;
    if ((FlagsOf(a) & kShown) != (ST_RELATIME | kValid)) return 5;
    if (mount(a.c_str(), b.c_str(), nullptr, MS_BIND, nullptr) != 0) return 6;
    if (Remount(b, MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOATIME) != 0) return 7;
    if ((FlagsOf(b) & kShown) != (ST_RDONLY | ST_NOSUID | ST_NOATIME | kValid)) return 8;
    if ((FlagsOf(a, true) & kShown) != (ST_RELATIME | kValid)) return 9;
    // The filesystem read-only: the mount's own flag stays, ST_RDONLY shows.
    if (Remount(b, MS_BIND | MS_NOSUID | MS_NOATIME) != 0 || Remount(a, MS_RDONLY) != 0) {
      return 10;
    }
    if ((FlagsOf(b) & kShown) != (ST_RDONLY | ST_NOSUID | ST_NOATIME | kValid)) return 11;
    if (Remount(a, 0) != 0 || (FlagsOf(b, true) & kShown) != (ST_NOSUID | ST_NOATIME | kValid)) {
      return 12;
    }
    return 0;
  });
  EXPECT_EQ(result, 0);
}

}  // namespace
}  // namespace syscall_test
