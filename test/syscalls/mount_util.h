// Helpers of the mount tests (mount_ns_test.cc, mount_tree_test.cc): file
// checks, /proc/PID/mounts and mountinfo, a private mount namespace of the
// caller's own, and a fixture with three scratch directories a, b and c.
// Every test changes mounts only in namespaces of its own children.
//
//   if (!OwnNamespace() || !MountTmpfs(dir_ + "/a")) _exit(1);
#ifndef SEEDVISOR_TEST_SYSCALLS_MOUNT_UTIL_H_
#define SEEDVISOR_TEST_SYSCALLS_MOUNT_UTIL_H_

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {

inline bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

inline bool Touch(const std::string& p) {
  const int fd = open(p.c_str(), O_CREAT | O_WRONLY, 0644);
  return fd >= 0 && close(fd) == 0;
}

// Whether /proc/`who`/mounts lists a mount at `dir`.
inline bool MountsShow(const std::string& who, const std::string& dir) {
  std::ifstream f("/proc/" + who + "/mounts");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream fields(line);
    std::string source, where;
    fields >> source >> where;
    if (where == dir) return true;
  }
  return false;
}

// The mount options (mountinfo's sixth field) of the last mount at `dir`
// in /proc/self/mountinfo, or "".
inline std::string MountOptions(const std::string& dir) {
  std::ifstream f("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(f, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, where, options;
    fields >> id >> parent >> dev >> root >> where >> options;
    if (where == dir) found = options;
  }
  return found;
}

inline std::string NsLink(const std::string& who) {
  char buf[64] = {};
  const ssize_t n = readlink(("/proc/" + who + "/ns/mnt").c_str(), buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// A new mount namespace of the caller's own, every mount in it private
// (unshare(1)'s default), so that its mounts stay in it.
inline bool OwnNamespace() {
  return unshare(CLONE_NEWNS) == 0 &&
         mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
}

// Runs `checks` in a child in a mount namespace of its own (OwnNamespace):
// the child's exit code, which is `checks`'s result (its first failed
// check's; 1 if the namespace could not be made), or 200 + N if it died of
// signal N.
inline int InOwnNamespace(const std::function<int()>& checks) {
  const pid_t c = fork();
  if (c < 0) return -1;
  if (c == 0) _exit(OwnNamespace() ? checks() : 1);
  return WaitCode(c);
}

inline bool MountTmpfs(const std::string& dir) {
  return mount("tmpfs", dir.c_str(), "tmpfs", 0, "mode=0755") == 0;
}

// Three empty directories dir_/a, dir_/b, dir_/c; skips without
// CAP_SYS_ADMIN.
class MountNsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveCap(CAP_SYS_ADMIN)) GTEST_SKIP() << "needs CAP_SYS_ADMIN";
    char tmpl[] = "/tmp/mount_ns_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr) << ErrnoName(errno);
    dir_ = tmpl;
    for (const char* sub : {"/a", "/b", "/c"}) {
      ASSERT_EQ(mkdir((dir_ + sub).c_str(), 0755), 0) << ErrnoName(errno);
    }
  }
  void TearDown() override {
    if (dir_.empty()) return;
    for (const char* sub : {"/a", "/b", "/c"}) rmdir((dir_ + sub).c_str());
    rmdir(dir_.c_str());
  }
  std::string dir_;
};

}  // namespace syscall_test

#endif  // SEEDVISOR_TEST_SYSCALLS_MOUNT_UTIL_H_
