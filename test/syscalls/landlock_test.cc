// Landlock (landlock(7)): landlock_create_ruleset, landlock_add_rule and
// landlock_restrict_self, their errnos (security/landlock/syscalls.c), and
// the file-system rights of ABI 1-3 as every path operation sees them,
// including a restricted task's attempts to get around its rules. Every
// case restricts a forked child only: a domain is never lifted.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

// Debian's kernel headers stop at ABI 2.
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif

namespace syscall_test {
namespace {

// Run as a re-executed copy of this binary by the exec case: opens the
// path and exits with 0 or the errno (before gtest sees argv).
[[maybe_unused]] const bool kProbe = [] {
  if (const char* p = getenv("LANDLOCK_TEST_PROBE")) {
    int fd = open(p, O_RDONLY);
    _exit(fd >= 0 ? 0 : errno);
  }
  return false;
}();

constexpr uint64_t kFsV1 = (1ULL << 13) - 1;  // EXECUTE .. MAKE_SYM

long CreateRuleset(const void* attr, size_t size, uint32_t flags) {
  return syscall(SYS_landlock_create_ruleset, attr, size, flags);
}
long AddRule(int fd, int type, const void* attr, uint32_t flags) {
  return syscall(SYS_landlock_add_rule, fd, type, attr, flags);
}
long RestrictSelf(int fd, uint32_t flags) { return syscall(SYS_landlock_restrict_self, fd, flags); }

// A ruleset handling `handled`, or -1.
int Ruleset(uint64_t handled) {
  uint64_t attr[3] = {handled, 0, 0};
  return static_cast<int>(CreateRuleset(attr, sizeof(uint64_t), 0));
}

// Adds a rule granting `access` on `path`; false on failure.
bool Allow(int rs, const std::string& path, uint64_t access) {
  int fd = open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) return false;
  landlock_path_beneath_attr pb{access, fd};
  long r = AddRule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
  close(fd);
  return r == 0;
}

bool Enforce(int rs) {
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && RestrictSelf(rs, 0) == 0;
}

// errno of `r` if it failed, 0 if it succeeded (closing an fd it returned).
int Err(long r, bool is_fd = false) {
  if (r < 0) return errno;
  if (is_fd) close(static_cast<int>(r));
  return 0;
}
int OpenErr(const std::string& p, int flags, mode_t mode = 0644) {
  return Err(open(p.c_str(), flags, mode), true);
}

class LandlockTest : public testing::Test {
 protected:
  void SetUp() override {
    long abi = CreateRuleset(nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    if (abi < 0 && errno == EOPNOTSUPP) GTEST_SKIP() << "Landlock is disabled on this kernel";
    ASSERT_GE(abi, 3) << "ABI " << abi << ": " << ErrnoName(errno);
    for (const char* d : {"a", "b", "c"}) ASSERT_EQ(mkdir(dir_.Path(d).c_str(), 0755), 0);
    for (const char* f : {"a/f", "b/f", "c/f"}) ASSERT_TRUE(WriteFile(dir_.Path(f), "data"));
  }
  std::string P(const char* name) const { return dir_.Path(name); }
  TempDir dir_;
};

TEST_F(LandlockTest, CreateRulesetErrnos) {
  uint64_t attr[8] = {LANDLOCK_ACCESS_FS_READ_FILE};
  EXPECT_ERRNO(EINVAL, CreateRuleset(attr, 7, 0));  // smaller than its first field
  EXPECT_ERRNO(E2BIG, CreateRuleset(attr, 4097, 0));  // more than a page
  EXPECT_ERRNO(EFAULT, CreateRuleset(nullptr, 8, 0));
  EXPECT_ERRNO(EINVAL, CreateRuleset(attr, 8, 1U << 31));  // unknown flag
  EXPECT_ERRNO(EINVAL, CreateRuleset(attr, 8, LANDLOCK_CREATE_RULESET_VERSION));
  EXPECT_ERRNO(EINVAL, CreateRuleset(nullptr, 8, LANDLOCK_CREATE_RULESET_VERSION));
  attr[7] = 1;  // past every field any ABI knows: must be zero
  EXPECT_ERRNO(E2BIG, CreateRuleset(attr, sizeof(attr), 0));
  attr[7] = 0;
  attr[0] = 1ULL << 63;  // no such right
  EXPECT_ERRNO(EINVAL, CreateRuleset(attr, 8, 0));
  attr[0] = 0;
  EXPECT_ERRNO(ENOMSG, CreateRuleset(attr, 8, 0));
  attr[0] = LANDLOCK_ACCESS_FS_READ_FILE;
  int fd = static_cast<int>(CreateRuleset(attr, sizeof(attr), 0));  // zero tail: fine
  ASSERT_GE(fd, 0) << ErrnoName(errno);
  EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
  char c;
  EXPECT_ERRNO(EINVAL, read(fd, &c, 1));
  char link[64] = {};
  ASSERT_GT(readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link, sizeof(link) - 1), 0);
  EXPECT_STREQ(link, "anon_inode:[landlock-ruleset]");
  close(fd);
}

TEST_F(LandlockTest, AddRuleErrnos) {
  int rs = Ruleset(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR);
  ASSERT_GE(rs, 0);
  int dir = open(P("a").c_str(), O_PATH);
  int file = open(P("a/f").c_str(), O_RDONLY);
  ASSERT_GE(dir, 0);
  ASSERT_GE(file, 0);
  landlock_path_beneath_attr pb{LANDLOCK_ACCESS_FS_READ_FILE, dir};
  EXPECT_ERRNO(EINVAL, AddRule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 1));
  EXPECT_ERRNO(EBADF, AddRule(-1, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
  EXPECT_ERRNO(EBADFD, AddRule(file, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
  EXPECT_ERRNO(EBADF, AddRule(dir, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));  // O_PATH: no file
  EXPECT_ERRNO(EINVAL, AddRule(rs, 0, &pb, 0));
  EXPECT_ERRNO(EFAULT, AddRule(rs, LANDLOCK_RULE_PATH_BENEATH, nullptr, 0));
  pb.allowed_access = 0;
  EXPECT_ERRNO(ENOMSG, AddRule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
  pb.allowed_access = LANDLOCK_ACCESS_FS_WRITE_FILE;  // not handled
  EXPECT_ERRNO(EINVAL, AddRule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
  pb.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE;
  pb.parent_fd = -1;
  EXPECT_ERRNO(EBADF, AddRule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
  pb.parent_fd = rs;  // a ruleset is no file
  EXPECT_ERRNO(EBADFD, AddRule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pb.parent_fd = p[0];  // an internal filesystem's file
  EXPECT_ERRNO(EBADFD, AddRule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
  pb.parent_fd = file;
  pb.allowed_access = LANDLOCK_ACCESS_FS_READ_DIR;  // a directory's right on a file
  EXPECT_ERRNO(EINVAL, AddRule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
  pb.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE;
  EXPECT_OK(AddRule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
  pb.parent_fd = dir;
  pb.allowed_access = LANDLOCK_ACCESS_FS_READ_DIR;
  EXPECT_OK(AddRule(rs, LANDLOCK_RULE_PATH_BENEATH, &pb, 0));
  for (int fd : {rs, dir, file, p[0], p[1]}) close(fd);
}

TEST_F(LandlockTest, RestrictSelfErrnosAndSixteenLayers) {
  int rs = Ruleset(LANDLOCK_ACCESS_FS_EXECUTE);
  int file = open(P("a/f").c_str(), O_RDONLY);
  ASSERT_GE(rs, 0);
  ASSERT_GE(file, 0);
  EXPECT_EXIT_CODE(RunInChild([&] {
    if (Err(RestrictSelf(rs, 1U << 31)) != EINVAL) return 1;  // ABI 7 knows bits 0-2
    if (Err(RestrictSelf(-1, 0)) != EBADF) return 2;
    if (Err(RestrictSelf(file, 0)) != EBADFD) return 3;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 5;
    for (int i = 0; i < 16; ++i) {
      if (RestrictSelf(rs, 0) != 0) return 10 + i;
    }
    if (Err(RestrictSelf(rs, 0)) != E2BIG) return 4;
    return 0;
  }), 0);
  // Neither no_new_privs nor CAP_SYS_ADMIN: EPERM, before the flags and the
  // fd are looked at.
  if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1) {
    close(rs);
    close(file);
    GTEST_SKIP() << "no_new_privs is set for this test already: no EPERM case";
  }
  EXPECT_EQ(RunAsNobody([&] {
    if (Err(RestrictSelf(-1, 0)) != EPERM) return 1;
    if (Err(RestrictSelf(rs, 1U << 31)) != EPERM) return 5;
    if (Err(RestrictSelf(rs, 0)) != EPERM) return 2;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 3;
    return RestrictSelf(rs, 0) == 0 ? 0 : 4;
  }), 0);
  close(rs);
  close(file);
}

TEST_F(LandlockTest, ReadWriteAndDirectoryRights) {
  int rs = Ruleset(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                   LANDLOCK_ACCESS_FS_READ_DIR);
  ASSERT_TRUE(Allow(rs, P("a"), LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR));
  ASSERT_TRUE(Allow(rs, P("b/f"), LANDLOCK_ACCESS_FS_WRITE_FILE));  // one file's rule
  EXPECT_EXIT_CODE(RunInChild([&] {
    if (!Enforce(rs)) return 1;
    if (OpenErr(P("a/f"), O_RDONLY) != 0) return 2;
    if (OpenErr(P("a/f"), O_WRONLY) != EACCES) return 3;
    if (OpenErr(P("a/f"), O_RDWR) != EACCES) return 4;
    if (OpenErr(P("a"), O_RDONLY | O_DIRECTORY) != 0) return 5;
    if (OpenErr(P("b"), O_RDONLY | O_DIRECTORY) != EACCES) return 6;
    if (OpenErr(P("b/f"), O_WRONLY) != 0) return 7;
    if (OpenErr(P("b/f"), O_RDONLY) != EACCES) return 8;
    if (OpenErr(P("c/f"), O_RDONLY) != EACCES) return 9;
    // Unhandled rights and path-less checks stay: stat, chmod, O_PATH.
    struct stat st;
    if (stat(P("c/f").c_str(), &st) != 0) return 10;
    if (OpenErr(P("c/f"), O_PATH) != 0) return 11;
    if (OpenErr(P("a/../c/f"), O_RDONLY) != EACCES) return 12;
    return 0;
  }), 0);
  close(rs);
}

TEST_F(LandlockTest, MakeAndRemoveRights) {
  int rs = Ruleset(kFsV1 & ~(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_READ_FILE |
                             LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_WRITE_FILE));
  ASSERT_GE(rs, 0);
  ASSERT_EQ(mkdir(P("a/sub").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("b/sub").c_str(), 0755), 0);
  ASSERT_TRUE(Allow(rs, P("a"),
                    LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REMOVE_FILE |
                        LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |
                        LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_MAKE_FIFO));
  EXPECT_EXIT_CODE(RunInChild([&] {
    if (!Enforce(rs)) return 1;
    if (OpenErr(P("a/new"), O_CREAT | O_WRONLY) != 0) return 2;
    if (OpenErr(P("b/new"), O_CREAT | O_WRONLY) != EACCES) return 3;
    if (OpenErr(P("b/f"), O_CREAT | O_WRONLY) != 0) return 4;  // exists: no MAKE_REG asked
    if (Err(mkdir(P("a/d").c_str(), 0755)) != 0) return 5;
    if (Err(mkdir(P("b/d").c_str(), 0755)) != EACCES) return 6;
    if (Err(mkdir(P("b/sub").c_str(), 0755)) != EEXIST) return 7;  // lookup first
    if (Err(symlink("x", P("a/l").c_str())) != 0) return 8;
    if (Err(symlink("x", P("b/l").c_str())) != EACCES) return 9;
    if (Err(mknod(P("a/fifo").c_str(), S_IFIFO | 0644, 0)) != 0) return 10;
    if (Err(mknod(P("b/fifo").c_str(), S_IFIFO | 0644, 0)) != EACCES) return 11;
    if (Err(mknod(P("a/reg").c_str(), S_IFREG | 0644, 0)) != 0) return 12;
    if (Err(mknod(P("b/reg").c_str(), S_IFREG | 0644, 0)) != EACCES) return 13;
    if (Err(unlink(P("a/f").c_str())) != 0) return 14;
    if (Err(unlink(P("b/f").c_str())) != EACCES) return 15;
    if (Err(unlink(P("b/nothing").c_str())) != ENOENT) return 16;
    if (Err(rmdir(P("a/sub").c_str())) != 0) return 17;
    if (Err(rmdir(P("b/sub").c_str())) != EACCES) return 18;
    return 0;
  }), 0);
  close(rs);
}

// LANDLOCK_ACCESS_FS_REFER: reparenting needs it on both sides and may not
// give the object rights it lacked; EACCES (a creation or removal denied)
// comes before EXDEV.
TEST_F(LandlockTest, ReferAcrossRenameAndLink) {
  int rs = Ruleset(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_REFER |
                   LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REMOVE_FILE);
  ASSERT_GE(rs, 0);
  const uint64_t mv = LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REMOVE_FILE;
  ASSERT_TRUE(Allow(rs, P("a"), LANDLOCK_ACCESS_FS_REFER | mv));
  ASSERT_TRUE(Allow(rs, P("b"), LANDLOCK_ACCESS_FS_REFER | mv | LANDLOCK_ACCESS_FS_READ_FILE));
  ASSERT_TRUE(Allow(rs, P("c"), mv));  // no REFER
  ASSERT_TRUE(WriteFile(P("b/g"), "g"));
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);  // nothing allowed
  int early = open(P("c/f").c_str(), O_RDONLY);
  ASSERT_GE(early, 0);
  EXPECT_EXIT_CODE(RunInChild([&] {
    if (!Enforce(rs)) return 1;
    if (Err(rename(P("a/f").c_str(), P("a/f2").c_str())) != 0) return 2;  // same dir
    // a -> b would let the file be read: EXDEV.
    if (Err(rename(P("a/f2").c_str(), P("b/h").c_str())) != EXDEV) return 3;
    if (Err(link(P("a/f2").c_str(), P("b/h").c_str())) != EXDEV) return 4;
    // b -> a loses READ_FILE: fine.
    if (Err(rename(P("b/g").c_str(), P("a/g").c_str())) != 0) return 5;
    if (OpenErr(P("a/g"), O_RDONLY) != EACCES) return 6;
    if (Err(link(P("a/g").c_str(), P("a/g2").c_str())) != 0) return 7;
    // c has no REFER: EXDEV either way.
    if (Err(rename(P("a/g").c_str(), P("c/g").c_str())) != EXDEV) return 8;
    if (Err(rename(P("c/f").c_str(), P("a/cf").c_str())) != EXDEV) return 9;
    // d lets nothing be made: EACCES, before EXDEV.
    if (Err(rename(P("a/g").c_str(), P("d/g").c_str())) != EACCES) return 10;
    if (Err(link(P("a/g").c_str(), P("d/g").c_str())) != EACCES) return 11;
    // linkat(fd, "", AT_EMPTY_PATH) of a file opened before the domain:
    // the same check (needs CAP_DAC_READ_SEARCH, root has it).
    if (HaveCap(CAP_DAC_READ_SEARCH) &&
        Err(linkat(early, "", AT_FDCWD, P("d/e").c_str(), AT_EMPTY_PATH)) != EACCES) {
      return 12;
    }
    // And through its /proc/self/fd link (no capability needed): c has no
    // REFER (EXDEV into a), d lets nothing be made (EACCES).
    const std::string early_link = "/proc/self/fd/" + std::to_string(early);
    if (Err(linkat(AT_FDCWD, early_link.c_str(), AT_FDCWD, P("d/e").c_str(),
                   AT_SYMLINK_FOLLOW)) != EACCES) {
      return 13;
    }
    if (Err(linkat(AT_FDCWD, early_link.c_str(), AT_FDCWD, P("a/e").c_str(),
                   AT_SYMLINK_FOLLOW)) != EXDEV) {
      return 14;
    }
    return 0;
  }), 0);
  close(early);
  close(rs);
}

TEST_F(LandlockTest, TruncateRight) {
  int rs = Ruleset(LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE);
  ASSERT_GE(rs, 0);
  ASSERT_TRUE(Allow(rs, P("a"), LANDLOCK_ACCESS_FS_WRITE_FILE));
  ASSERT_TRUE(Allow(rs, P("b"), LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE));
  int before = open(P("c/f").c_str(), O_WRONLY);  // opened unrestricted: may truncate
  ASSERT_GE(before, 0);
  EXPECT_EXIT_CODE(RunInChild([&] {
    if (!Enforce(rs)) return 1;
    if (OpenErr(P("a/f"), O_WRONLY | O_TRUNC) != EACCES) return 2;
    int fd = open(P("a/f").c_str(), O_WRONLY);
    if (fd < 0) return 3;
    if (Err(ftruncate(fd, 0)) != EACCES) return 4;
    close(fd);
    if (Err(truncate(P("a/f").c_str(), 0)) != EACCES) return 5;
    if (OpenErr(P("b/f"), O_WRONLY | O_TRUNC) != 0) return 6;
    fd = open(P("b/f").c_str(), O_WRONLY);
    if (fd < 0 || ftruncate(fd, 1) != 0) return 7;
    close(fd);
    if (Err(truncate(P("b/f").c_str(), 0)) != 0) return 8;
    if (Err(ftruncate(before, 0)) != 0) return 9;
    if (OpenErr(P("a/new"), O_WRONLY | O_CREAT | O_TRUNC) != 0) return 10;  // made, not truncated
    return 0;
  }), 0);
  close(before);
  close(rs);
}

// The domain stays across fork and execve; the exec'd binary itself needs
// EXECUTE and READ_FILE.
TEST_F(LandlockTest, InheritedAcrossForkAndExec) {
  int rs = Ruleset(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_EXECUTE);
  ASSERT_GE(rs, 0);
  const std::string self = SelfExe();
  ASSERT_TRUE(Allow(rs, self, LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_EXECUTE));
  ASSERT_TRUE(Allow(rs, P("a"), LANDLOCK_ACCESS_FS_READ_FILE));
  std::string b = P("b/f");
  std::string a = P("a/f");
  EXPECT_EXIT_CODE(RunInChild([&] {
    if (!Enforce(rs)) return 1;
    int st = RunInChild([&] { return OpenErr(b, O_RDONLY) == EACCES ? 0 : 1; });
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 2;
    for (const auto& [path, want] : {std::pair{b, EACCES}, std::pair{a, 0}}) {
      pid_t pid = fork();
      if (pid == 0) {
        setenv("LANDLOCK_TEST_PROBE", path.c_str(), 1);
        execl(self.c_str(), self.c_str(), nullptr);
        _exit(99);
      }
      if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return 3;
      if (WEXITSTATUS(st) != want) return 4;
    }
    // Not allowed to execute: EACCES from execve.
    if (Err(execl("/bin/true", "true", nullptr)) != EACCES) return 5;
    return 0;
  }), 0);
  close(rs);
}

// What a restricted task holds or may reach does not get it around its
// rules: a directory fd opened before, an O_PATH fd and /proc/self/fd, a
// symlink from an allowed place, a mount over an allowed directory.
TEST_F(LandlockTest, EscapesAreRefused) {
  int rs = Ruleset(LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                   LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_MAKE_SYM);
  ASSERT_GE(rs, 0);
  ASSERT_TRUE(Allow(rs, P("a"), LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
                                    LANDLOCK_ACCESS_FS_MAKE_SYM));
  ASSERT_EQ(symlink(P("b/f").c_str(), P("a/tob").c_str()), 0);
  int bdir = open(P("b").c_str(), O_RDONLY | O_DIRECTORY);
  int bpath = open(P("b/f").c_str(), O_PATH);
  ASSERT_GE(bdir, 0);
  ASSERT_GE(bpath, 0);
  EXPECT_EXIT_CODE(RunInChild([&] {
    if (!Enforce(rs)) return 1;
    if (Err(openat(bdir, "f", O_RDONLY), true) != EACCES) return 2;
    std::string via = "/proc/self/fd/" + std::to_string(bpath);
    if (OpenErr(via, O_RDONLY) != EACCES) return 3;
    int p = open(P("b/f").c_str(), O_PATH);  // O_PATH opens are not checked
    if (p < 0) return 4;
    if (OpenErr("/proc/self/fd/" + std::to_string(p), O_RDWR) != EACCES) return 5;
    if (OpenErr(P("a/tob"), O_RDONLY) != EACCES) return 6;
    if (Err(symlink(P("b/f").c_str(), P("a/tob2").c_str())) != 0) return 7;
    if (OpenErr(P("a/tob2"), O_RDONLY) != EACCES) return 8;
    // A file the overlay would copy up first (in the sandbox, a host file).
    if (OpenErr("/etc/passwd", O_WRONLY) != EACCES) return 9;
    if (OpenErr("/etc/passwd", O_RDONLY) != EACCES) return 10;
    // The fd opened before keeps its own access: reading b's directory works.
    char buf[256];
    if (Err(syscall(SYS_getdents64, bdir, buf, sizeof(buf))) != 0) return 11;
    if (HaveCap(CAP_SYS_ADMIN)) {
      if (Err(mount("none", P("a").c_str(), "tmpfs", 0, nullptr)) != EPERM) return 12;
    }
    return 0;
  }), 0);
  close(bdir);
  close(bpath);
  close(rs);
}

int g_peek = 42;  // read through process_vm_readv

// A landlocked task reaches by ptrace, process_vm_readv or /proc/PID/mem
// only tasks of its own domain or one nested in it (hook_ptrace_access_
// check()): never a less restricted one it could drive.
TEST_F(LandlockTest, PtraceOnlyIntoOwnDomain) {
  int rs = Ruleset(LANDLOCK_ACCESS_FS_READ_FILE);
  ASSERT_GE(rs, 0);
  pid_t outside = fork();
  if (outside == 0) {
    pause();
    _exit(0);
  }
  ASSERT_GT(outside, 0);
  EXPECT_EXIT_CODE(RunInChild([&] {
    if (!Enforce(rs)) return 1;
    if (Err(ptrace(PTRACE_ATTACH, outside, nullptr, nullptr)) != EPERM) return 2;
    int v = 0;
    iovec local{&v, sizeof(v)}, remote{&g_peek, sizeof(g_peek)};
    if (Err(process_vm_readv(outside, &local, 1, &remote, 1, 0)) != EPERM) return 3;
    pid_t inner = fork();  // in this domain
    if (inner == 0) {
      pause();
      _exit(0);
    }
    if (process_vm_readv(inner, &local, 1, &remote, 1, 0) != sizeof(v) || v != 42) return 4;
    if (ptrace(PTRACE_ATTACH, inner, nullptr, nullptr) != 0) return 5;
    int st;
    if (waitpid(inner, &st, 0) != inner || !WIFSTOPPED(st)) return 6;
    kill(inner, SIGKILL);
    waitpid(inner, &st, 0);
    return 0;
  }), 0);
  kill(outside, SIGKILL);
  waitpid(outside, nullptr, 0);
  close(rs);
}

// Layers stack: each must allow an access; a later one cannot widen it.
TEST_F(LandlockTest, StackedLayersAllMustAllow) {
  int r1 = Ruleset(LANDLOCK_ACCESS_FS_READ_FILE);
  int r2 = Ruleset(LANDLOCK_ACCESS_FS_READ_FILE);
  ASSERT_GE(r1, 0);
  ASSERT_GE(r2, 0);
  ASSERT_TRUE(Allow(r1, dir_.path(), LANDLOCK_ACCESS_FS_READ_FILE));
  ASSERT_TRUE(Allow(r2, P("a"), LANDLOCK_ACCESS_FS_READ_FILE));
  ASSERT_TRUE(Allow(r2, P("b"), LANDLOCK_ACCESS_FS_READ_FILE));
  EXPECT_EXIT_CODE(RunInChild([&] {
    if (!Enforce(r1)) return 1;
    if (OpenErr(P("c/f"), O_RDONLY) != 0) return 2;
    if (RestrictSelf(r2, 0) != 0) return 3;
    if (OpenErr(P("c/f"), O_RDONLY) != EACCES) return 4;
    if (OpenErr(P("a/f"), O_RDONLY) != 0) return 5;
    if (OpenErr("/etc/passwd", O_RDONLY) != EACCES) return 6;  // r1 never allowed it
    return 0;
  }), 0);
  close(r1);
  close(r2);
}

}  // namespace
}  // namespace syscall_test
