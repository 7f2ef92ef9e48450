// Inode flags (ioctl_iflags(2)): FS_IOC_GETFLAGS/FS_IOC_SETFLAGS, and what
// FS_IMMUTABLE_FL and FS_APPEND_FL forbid (EPERM). The flags are set on
// files under a TempDir (their filesystem's other flags kept) and always
// cleared again by the test, so nothing undeletable stays behind.
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

// Last: glibc 2.36 refuses <sys/mount.h> after it.
#include <linux/fs.h>

namespace syscall_test {
namespace {

int GetFlags(const std::string& path, int* flags) {
  FileDescriptor fd(open(path.c_str(), O_RDONLY | O_NONBLOCK));
  if (fd.get() < 0) return -1;
  return ioctl(fd.get(), FS_IOC_GETFLAGS, flags);
}

int SetFlags(const std::string& path, int flags) {
  FileDescriptor fd(open(path.c_str(), O_RDONLY | O_NONBLOCK));
  if (fd.get() < 0) return -1;
  return ioctl(fd.get(), FS_IOC_SETFLAGS, &flags);
}

// Adds `add` to `path`'s flags for its lifetime, then puts the old ones
// back (whatever the test did in between).
class ScopedFlags {
 public:
  ScopedFlags(std::string path, int add) : path_(std::move(path)) {
    if (GetFlags(path_, &old_) != 0) {
      ADD_FAILURE() << "FS_IOC_GETFLAGS " << path_ << ": " << ErrnoName(errno);
      return;
    }
    if (SetFlags(path_, old_ | add) != 0) {
      ADD_FAILURE() << "FS_IOC_SETFLAGS " << path_ << ": " << ErrnoName(errno);
      return;
    }
    set_ = true;
  }
  ~ScopedFlags() {
    if (set_ && SetFlags(path_, old_) != 0) {
      ADD_FAILURE() << "restoring the flags of " << path_ << ": " << ErrnoName(errno);
    }
  }
  bool ok() const { return set_; }

 private:
  std::string path_;
  int old_ = 0;
  bool set_ = false;
};

int OpenErrno(const std::string& path, int flags) {
  int fd = open(path.c_str(), flags, 0644);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

class InodeFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveCap(CAP_LINUX_IMMUTABLE)) GTEST_SKIP() << "needs CAP_LINUX_IMMUTABLE";
    int flags;
    if (GetFlags(dir_.path(), &flags) != 0 && errno == ENOTTY) {
      GTEST_SKIP() << "the scratch directory's filesystem keeps no inode flags";
    }
    file_ = dir_.Path("f");
    ASSERT_TRUE(WriteFile(file_, "data"));
  }

  TempDir dir_;
  std::string file_;
};

TEST_F(InodeFlagsTest, ImmutableFile) {
  {
    ScopedFlags imm(file_, FS_IMMUTABLE_FL);
    ASSERT_TRUE(imm.ok());
    int flags = 0;
    ASSERT_OK(GetFlags(file_, &flags));
    EXPECT_TRUE(flags & FS_IMMUTABLE_FL);
    EXPECT_EQ(OpenErrno(file_, O_WRONLY), EPERM);
    EXPECT_EQ(OpenErrno(file_, O_RDWR), EPERM);
    EXPECT_EQ(OpenErrno(file_, O_WRONLY | O_APPEND), EPERM);
    EXPECT_EQ(OpenErrno(file_, O_RDONLY | O_TRUNC), EPERM);
    EXPECT_ERRNO(EPERM, truncate(file_.c_str(), 0));
    EXPECT_ERRNO(EPERM, unlink(file_.c_str()));
    EXPECT_ERRNO(EPERM, rename(file_.c_str(), dir_.Path("g").c_str()));
    EXPECT_ERRNO(EPERM, link(file_.c_str(), dir_.Path("h").c_str()));
    EXPECT_ERRNO(EPERM, chmod(file_.c_str(), 0600));
    EXPECT_ERRNO(EPERM, chown(file_.c_str(), geteuid(), getegid()));
    struct timeval tv[2] = {{1, 0}, {2, 0}};
    EXPECT_ERRNO(EPERM, utimes(file_.c_str(), tv));
    EXPECT_ERRNO(EPERM, setxattr(file_.c_str(), "user.x", "v", 1, 0));
    // Still readable, and renaming over it is removing it.
    EXPECT_EQ(ReadFile(file_), "data");
    ASSERT_TRUE(WriteFile(dir_.Path("other"), "o"));
    EXPECT_ERRNO(EPERM, rename(dir_.Path("other").c_str(), file_.c_str()));
  }
  // Cleared, it is an ordinary file again.
  EXPECT_EQ(OpenErrno(file_, O_WRONLY | O_TRUNC), 0);
  EXPECT_OK(unlink(file_.c_str()));
}

TEST_F(InodeFlagsTest, AppendOnlyFile) {
  {
    ScopedFlags app(file_, FS_APPEND_FL);
    ASSERT_TRUE(app.ok());
    EXPECT_EQ(OpenErrno(file_, O_WRONLY), EPERM);
    EXPECT_EQ(OpenErrno(file_, O_RDWR), EPERM);
    EXPECT_EQ(OpenErrno(file_, O_WRONLY | O_APPEND | O_TRUNC), EPERM);
    FileDescriptor fd(open(file_.c_str(), O_WRONLY | O_APPEND));
    ASSERT_OK(fd.get());
    ASSERT_EQ(write(fd.get(), "+", 1), 1);
    EXPECT_EQ(ReadFile(file_), "data+");
    EXPECT_ERRNO(EPERM, ftruncate(fd.get(), 0));
    EXPECT_ERRNO(EPERM, truncate(file_.c_str(), 0));
    EXPECT_ERRNO(EPERM, unlink(file_.c_str()));
    EXPECT_ERRNO(EPERM, rename(file_.c_str(), dir_.Path("g").c_str()));
    EXPECT_ERRNO(EPERM, link(file_.c_str(), dir_.Path("h").c_str()));
    EXPECT_ERRNO(EPERM, chmod(file_.c_str(), 0600));
  }
  EXPECT_EQ(OpenErrno(file_, O_WRONLY), 0);
}

// What an append-only file still allows and refuses beyond opens: a touch
// but no explicit times (may_setattr()), no F_SETFL without O_APPEND
// (setfl()), allocation but no hole (vfs_fallocate()).
TEST_F(InodeFlagsTest, AppendOnlyTimesFcntlAndFallocate) {
  FileDescriptor fd(open(file_.c_str(), O_WRONLY | O_APPEND));
  ASSERT_OK(fd.get());
  ScopedFlags app(file_, FS_APPEND_FL);
  ASSERT_TRUE(app.ok());
  EXPECT_OK(utimes(file_.c_str(), nullptr));
  struct timeval tv[2] = {{1, 0}, {2, 0}};
  EXPECT_ERRNO(EPERM, utimes(file_.c_str(), tv));
  EXPECT_ERRNO(EPERM, fcntl(fd.get(), F_SETFL, 0));
  EXPECT_OK(fcntl(fd.get(), F_SETFL, O_APPEND | O_NONBLOCK));
  EXPECT_ERRNO(EPERM, fallocate(fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1));
  EXPECT_OK(fallocate(fd.get(), 0, 0, 8192));
}

// An immutable file: a touch is refused too, and an fd opened before the
// flag does not allocate (whether it truncates is the filesystem's: tmpfs
// lets it, ext4 does not); EPERM comes before the permission bits' EACCES.
TEST_F(InodeFlagsTest, ImmutableBeforePermissionAndOpenFds) {
  FileDescriptor fd(open(file_.c_str(), O_WRONLY));
  ASSERT_OK(fd.get());
  ASSERT_OK(chmod(dir_.path().c_str(), 0755));
  ASSERT_OK(chmod(file_.c_str(), 0444));
  ScopedFlags imm(file_, FS_IMMUTABLE_FL);
  ASSERT_TRUE(imm.ok());
  EXPECT_ERRNO(EPERM, utimes(file_.c_str(), nullptr));
  EXPECT_ERRNO(EPERM, fallocate(fd.get(), 0, 0, 8192));
  // Through the directory opened here: $TEST_TMPDIR's parents may be 0700,
  // where nobody's walk of the whole path ends in EACCES.
  FileDescriptor dir(open(dir_.path().c_str(), O_PATH | O_DIRECTORY));
  ASSERT_OK(dir.get());
  EXPECT_EQ(RunAsNobody([&] {
              int w = openat(dir.get(), "f", O_WRONLY);
              return w < 0 && errno == EPERM ? 0 : 1;
            }),
            0);
}

TEST_F(InodeFlagsTest, ImmutableDirectory) {
  const std::string d = dir_.Path("d");
  ASSERT_OK(mkdir(d.c_str(), 0755));
  const std::string in = d + "/in";
  ASSERT_TRUE(WriteFile(in, "x"));
  {
    ScopedFlags imm(d, FS_IMMUTABLE_FL);
    ASSERT_TRUE(imm.ok());
    EXPECT_EQ(OpenErrno(d + "/new", O_WRONLY | O_CREAT), EPERM);
    EXPECT_ERRNO(EPERM, mkdir((d + "/sub").c_str(), 0755));
    EXPECT_ERRNO(EPERM, symlink("x", (d + "/sym").c_str()));
    EXPECT_ERRNO(EPERM, unlink(in.c_str()));
    EXPECT_ERRNO(EPERM, rename(in.c_str(), (d + "/moved").c_str()));
    EXPECT_ERRNO(EPERM, rename(in.c_str(), dir_.Path("out").c_str()));
    EXPECT_ERRNO(EPERM, link(file_.c_str(), (d + "/l").c_str()));
    // What is in it is not immutable itself.
    EXPECT_EQ(OpenErrno(in, O_WRONLY | O_TRUNC), 0);
  }
  EXPECT_OK(unlink(in.c_str()));
}

TEST_F(InodeFlagsTest, AppendOnlyDirectory) {
  const std::string d = dir_.Path("d");
  ASSERT_OK(mkdir(d.c_str(), 0755));
  {
    ScopedFlags app(d, FS_APPEND_FL);
    ASSERT_TRUE(app.ok());
    // Names are made, never removed.
    ASSERT_EQ(OpenErrno(d + "/new", O_WRONLY | O_CREAT), 0);
    EXPECT_ERRNO(EPERM, unlink((d + "/new").c_str()));
    EXPECT_ERRNO(EPERM, rename((d + "/new").c_str(), (d + "/moved").c_str()));
    EXPECT_OK(rename(file_.c_str(), (d + "/came").c_str()));
  }
  EXPECT_OK(unlink((d + "/new").c_str()));
}

TEST_F(InodeFlagsTest, ChangingImmutableOrAppendNeedsCapLinuxImmutable) {
  int old = 0;
  ASSERT_OK(GetFlags(file_, &old));
  const std::string f = file_;
  int status = RunInChild([&] {
    if (!DropEffective(CAP_LINUX_IMMUTABLE)) return 1;
    if (SetFlags(f, old | FS_IMMUTABLE_FL) == 0 || errno != EPERM) return 2;
    if (SetFlags(f, old | FS_APPEND_FL) == 0 || errno != EPERM) return 3;
    // Other flags need no capability.
    if (SetFlags(f, old | FS_NODUMP_FL) != 0) return 4;
    int now = 0;
    if (GetFlags(f, &now) != 0 || !(now & FS_NODUMP_FL)) return 5;
    return SetFlags(f, old) == 0 ? 0 : 6;
  });
  EXPECT_EXIT_CODE(status, 0);
  {
    ScopedFlags imm(file_, FS_IMMUTABLE_FL);
    ASSERT_TRUE(imm.ok());
    status = RunInChild([&] {
      if (!DropEffective(CAP_LINUX_IMMUTABLE)) return 1;
      // Nor is it taken away without it.
      return SetFlags(f, old) != 0 && errno == EPERM ? 0 : 2;
    });
    EXPECT_EXIT_CODE(status, 0);
  }
  // Only the owner (or CAP_FOWNER) sets flags at all.
  ASSERT_OK(chmod(dir_.path().c_str(), 0755));
  ASSERT_OK(chmod(file_.c_str(), 0666));
  FileDescriptor dir(open(dir_.path().c_str(), O_PATH | O_DIRECTORY));  // as above
  ASSERT_OK(dir.get());
  status = RunAsNobody([&] {
    FileDescriptor fd(openat(dir.get(), "f", O_RDWR));
    if (fd.get() < 0) return 1;
    int flags = old;
    return ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) != 0 && errno == EPERM ? 0 : 2;
  });
  EXPECT_EQ(status, 0);
}

TEST_F(InodeFlagsTest, FilesWithoutFlags) {
  FileDescriptor p(open(file_.c_str(), O_PATH));
  ASSERT_OK(p.get());
  int flags;
  EXPECT_ERRNO(EBADF, ioctl(p.get(), FS_IOC_GETFLAGS, &flags));
  int fds[2];
  ASSERT_OK(pipe(fds));
  FileDescriptor r(fds[0]), w(fds[1]);
  EXPECT_ERRNO(ENOTTY, ioctl(r.get(), FS_IOC_GETFLAGS, &flags));
}

// tmpfs's own set (shmem_fileattr_set()): a new file has none, and flags
// it does not keep are EOPNOTSUPP. Neither immutable nor append-only here:
// /dev/shm is the host's natively.
TEST(InodeFlagsTmpfsTest, TmpfsKeepsItsFourFlags) {
  struct stat st;
  if (stat("/dev/shm", &st) != 0) GTEST_SKIP() << "no /dev/shm";
  char tmpl[] = "/dev/shm/inode_flags_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr) << ErrnoName(errno);
  const std::string d = tmpl, f = d + "/f";
  ASSERT_TRUE(WriteFile(f, ""));
  int flags = -1;
  ASSERT_OK(GetFlags(f, &flags));
  EXPECT_EQ(flags, 0);
  ASSERT_OK(SetFlags(f, FS_NODUMP_FL | FS_NOATIME_FL));
  ASSERT_OK(GetFlags(f, &flags));
  EXPECT_EQ(flags, FS_NODUMP_FL | FS_NOATIME_FL);
  EXPECT_ERRNO(EOPNOTSUPP, SetFlags(f, FS_NODUMP_FL | FS_SYNC_FL));
  ASSERT_OK(GetFlags(f, &flags));
  EXPECT_EQ(flags, FS_NODUMP_FL | FS_NOATIME_FL);  // unchanged
  ASSERT_OK(GetFlags(d, &flags));  // directories too
  EXPECT_EQ(flags, 0);
  EXPECT_OK(unlink(f.c_str()));
  EXPECT_OK(rmdir(d.c_str()));
}

}  // namespace
}  // namespace syscall_test
