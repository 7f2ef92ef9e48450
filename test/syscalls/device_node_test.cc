// Device nodes that root makes with mknod(2) on tmpfs (CAP_MKNOD): stat
// shows the type and number, and opening one reaches the device of that
// number — in the sandbox the sentry's own (null 1:3, zero 1:5, full 1:7,
// urandom 1:9), and ENXIO for a number it has none of, the host's disk
// included: a guest root never reaches a host device through a node.
//
// Each case mounts a tmpfs of its own in a mount namespace of its own
// child (a host /tmp may be mounted nodev, which would refuse every open).
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/child_check.h"
#include "test/syscalls/mount_util.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

class DeviceNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveCap(CAP_SYS_ADMIN) || !HaveCap(CAP_MKNOD)) {
      GTEST_SKIP() << "needs CAP_SYS_ADMIN and CAP_MKNOD";
    }
  }
  // Runs `checks` in a child with a fresh tmpfs at dir_.path(); expects 0
  // (the child printed what failed).
  void OnOwnTmpfs(const std::function<int()>& checks) {
    const int code = InOwnNamespace([&] { return MountTmpfs(dir_.path()) ? checks() : 3; });
    EXPECT_EQ(code, 0);
  }
  std::string Node(const char* name) { return dir_.path() + "/" + name; }
  TempDir dir_;
};

TEST_F(DeviceNodeTest, StatShowsTypeAndNumber) {
  OnOwnTmpfs([&] {
    CHILD_REQUIRE(mknod(Node("c").c_str(), S_IFCHR | 0640, makedev(1, 3)) == 0);
    CHILD_REQUIRE(mknod(Node("b").c_str(), S_IFBLK | 0600, makedev(7, 130)) == 0);
    struct stat st;
    CHILD_REQUIRE(stat(Node("c").c_str(), &st) == 0);
    CHILD_REQUIRE(S_ISCHR(st.st_mode) && (st.st_mode & 07777) == 0640);
    CHILD_REQUIRE(st.st_rdev == makedev(1, 3));
    CHILD_REQUIRE(stat(Node("b").c_str(), &st) == 0);
    CHILD_REQUIRE(S_ISBLK(st.st_mode) && st.st_rdev == makedev(7, 130));
    errno = 0;
    CHILD_REQUIRE(mknod(Node("c").c_str(), S_IFCHR | 0600, makedev(1, 3)) == -1 && errno == EEXIST);
    CHILD_REQUIRE(unlink(Node("c").c_str()) == 0 && unlink(Node("b").c_str()) == 0);
    return 0;
  });
}

TEST_F(DeviceNodeTest, MemoryDevicesOpenByNumber) {
  OnOwnTmpfs([&] {
    CHILD_REQUIRE(mknod(Node("null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
    CHILD_REQUIRE(mknod(Node("zero").c_str(), S_IFCHR | 0666, makedev(1, 5)) == 0);
    CHILD_REQUIRE(mknod(Node("full").c_str(), S_IFCHR | 0666, makedev(1, 7)) == 0);
    CHILD_REQUIRE(mknod(Node("urandom").c_str(), S_IFCHR | 0666, makedev(1, 9)) == 0);
    char buf[64];
    int fd = open(Node("null").c_str(), O_RDWR);
    CHILD_REQUIRE(fd >= 0);
    CHILD_REQUIRE(write(fd, "abc", 3) == 3);
    CHILD_REQUIRE(read(fd, buf, sizeof(buf)) == 0);
    struct stat st;
    CHILD_REQUIRE(fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
    close(fd);
    fd = open(Node("zero").c_str(), O_RDONLY);
    CHILD_REQUIRE(fd >= 0);
    memset(buf, 'x', sizeof(buf));
    CHILD_REQUIRE(read(fd, buf, sizeof(buf)) == static_cast<ssize_t>(sizeof(buf)));
    for (char c : buf) CHILD_REQUIRE(c == 0);
    close(fd);
    fd = open(Node("full").c_str(), O_WRONLY);
    CHILD_REQUIRE(fd >= 0);
    errno = 0;
    CHILD_REQUIRE(write(fd, "abc", 3) == -1 && errno == ENOSPC);
    close(fd);
    fd = open(Node("urandom").c_str(), O_RDONLY);
    CHILD_REQUIRE(fd >= 0);
    CHILD_REQUIRE(read(fd, buf, 32) == 32);
    close(fd);
    return 0;
  });
}

// Majors 60-63 are for local and experimental use (devices.txt): no driver
// of Linux's takes them, so Linux answers ENXIO too.
TEST_F(DeviceNodeTest, NumberWithoutDeviceIsEnxio) {
  OnOwnTmpfs([&] {
    CHILD_REQUIRE(mknod(Node("c").c_str(), S_IFCHR | 0666, makedev(60, 1)) == 0);
    CHILD_REQUIRE(mknod(Node("b").c_str(), S_IFBLK | 0666, makedev(60, 1)) == 0);
    errno = 0;
    CHILD_REQUIRE(open(Node("c").c_str(), O_RDWR) == -1 && errno == ENXIO);
    errno = 0;
    CHILD_REQUIRE(open(Node("b").c_str(), O_RDONLY) == -1 && errno == ENXIO);
    // O_PATH opens the name, not the device.
    const int fd = open(Node("c").c_str(), O_PATH);
    CHILD_REQUIRE(fd >= 0);
    close(fd);
    return 0;
  });
}

// may_open(): a device node on a nodev mount opens nothing (EACCES), the
// sentry's devices included; its name still opens with O_PATH.
TEST_F(DeviceNodeTest, NodevMountRefusesTheDevice) {
  const int code = InOwnNamespace([&] {
    CHILD_REQUIRE(mount("tmpfs", dir_.path().c_str(), "tmpfs", MS_NODEV, "mode=0755") == 0);
    CHILD_REQUIRE(mknod(Node("null").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
    errno = 0;
    CHILD_REQUIRE(open(Node("null").c_str(), O_RDWR) == -1 && errno == EACCES);
    errno = 0;
    CHILD_REQUIRE(open(Node("null").c_str(), O_RDONLY) == -1 && errno == EACCES);
    const int fd = open(Node("null").c_str(), O_PATH);
    CHILD_REQUIRE(fd >= 0);
    close(fd);
    return 0;
  });
  EXPECT_EQ(code, 0);
}

// A guest root's node for the host's disks (sd 8:0, nvme 259:0, virtio
// 253:0, loop 7:0, mem 1:1 = /dev/mem) opens nothing in the sandbox.
// Natively Linux opens the host's device: there this is not a rule.
TEST_F(DeviceNodeTest, HostDevicesAreNotReachable) {
  if (getenv("SEEDVISOR_HOST_RELEASE") == nullptr) {
    GTEST_SKIP() << "natively root's node opens the host's device; a rule of "
                    "the sandbox only";
  }
  OnOwnTmpfs([&] {
    const struct {
      mode_t type;
      int major, minor;
    } kHost[] = {{S_IFBLK, 8, 0}, {S_IFBLK, 259, 0}, {S_IFBLK, 253, 0},  {S_IFBLK, 7, 0},
                 {S_IFCHR, 1, 1}, {S_IFCHR, 1, 2},   {S_IFCHR, 10, 232}, {S_IFCHR, 4, 0}};
    for (const auto& h : kHost) {
      const std::string p = Node("host");
      CHILD_REQUIRE(mknod(p.c_str(), h.type | 0666, makedev(h.major, h.minor)) == 0);
      errno = 0;
      const int fd = open(p.c_str(), O_RDONLY);
      if (fd >= 0) {
        fprintf(stderr, "%d:%d opened\n", h.major, h.minor);
        return 4;
      }
      CHILD_REQUIRE(errno == ENXIO);
      CHILD_REQUIRE(unlink(p.c_str()) == 0);
    }
    return 0;
  });
}

}  // namespace
}  // namespace syscall_test
