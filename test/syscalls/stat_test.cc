// stat, fstat, lstat, newfstatat and statx on files, directories, symlinks
// and pipes.
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr long kBtrfsMagic = 0x9123683e;

class StatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteFile(file_, "hello", 0640)) << ErrnoName(errno);
    ASSERT_OK(mkdir(dir_path_.c_str(), 0750));
    ASSERT_OK(symlink("f", link_.c_str()));
  }

  // btrfs reports st_nlink 1 for every directory.
  bool DirLinkCountsAreClassic() {
    struct statfs fs;
    return statfs(dir_.path().c_str(), &fs) == 0 && fs.f_type != kBtrfsMagic;
  }

  TempDir dir_;
  std::string file_ = dir_.Path("f");
  std::string dir_path_ = dir_.Path("d");
  std::string link_ = dir_.Path("link");
};

TEST_F(StatTest, RegularFile) {
  struct stat st;
  ASSERT_OK(stat(file_.c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode)) << std::oct << st.st_mode;
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_size, 5);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(st.st_gid, getegid());
  EXPECT_NE(st.st_ino, 0u);
  EXPECT_GT(st.st_blksize, 0);
}

TEST_F(StatTest, Directory) {
  struct stat st;
  ASSERT_OK(stat(dir_path_.c_str(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode)) << std::oct << st.st_mode;
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  if (DirLinkCountsAreClassic()) {
    EXPECT_EQ(st.st_nlink, 2u);  // "d" in the parent and "." in itself.
    ASSERT_OK(mkdir((dir_path_ + "/sub").c_str(), 0700));
    ASSERT_OK(stat(dir_path_.c_str(), &st));
    EXPECT_EQ(st.st_nlink, 3u);  // Plus "sub/..".
  }
}

TEST_F(StatTest, StatFollowsSymlink) {
  struct stat via_link, direct;
  ASSERT_OK(stat(link_.c_str(), &via_link));
  ASSERT_OK(stat(file_.c_str(), &direct));
  EXPECT_TRUE(S_ISREG(via_link.st_mode));
  EXPECT_EQ(via_link.st_ino, direct.st_ino);
  EXPECT_EQ(via_link.st_dev, direct.st_dev);
  EXPECT_EQ(via_link.st_size, 5);
}

TEST_F(StatTest, LstatDoesNotFollowSymlink) {
  struct stat st, target;
  ASSERT_OK(lstat(link_.c_str(), &st));
  ASSERT_OK(stat(file_.c_str(), &target));
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << std::oct << st.st_mode;
  EXPECT_EQ(st.st_size, 1);  // strlen("f").
  EXPECT_EQ(st.st_mode & 0777, 0777u);
  EXPECT_NE(st.st_ino, target.st_ino);
}

TEST_F(StatTest, LstatOnRegularFileIsStat) {
  struct stat a, b;
  ASSERT_OK(lstat(file_.c_str(), &a));
  ASSERT_OK(stat(file_.c_str(), &b));
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_mode, b.st_mode);
}

TEST_F(StatTest, DanglingSymlink) {
  ASSERT_OK(symlink("nowhere", dir_.Path("dangling").c_str()));
  struct stat st;
  EXPECT_ERRNO(ENOENT, stat(dir_.Path("dangling").c_str(), &st));
  EXPECT_OK(lstat(dir_.Path("dangling").c_str(), &st));
  EXPECT_EQ(st.st_size, 7);
}

TEST_F(StatTest, Errors) {
  struct stat st;
  EXPECT_ERRNO(ENOENT, stat(dir_.Path("missing").c_str(), &st));
  EXPECT_ERRNO(ENOTDIR, stat((file_ + "/x").c_str(), &st));
  EXPECT_ERRNO(ENOENT, stat("", &st));
  EXPECT_ERRNO(ENAMETOOLONG,
               stat(dir_.Path(std::string(300, 'a')).c_str(), &st));
  EXPECT_ERRNO(EFAULT,
               syscall(SYS_stat, file_.c_str(), reinterpret_cast<void*>(8)));
  EXPECT_ERRNO(EFAULT, syscall(SYS_stat, reinterpret_cast<void*>(8), &st));
}

TEST_F(StatTest, SizeFollowsWrites) {
  FileDescriptor fd(open(file_.c_str(), O_WRONLY | O_APPEND));
  ASSERT_GE(fd.get(), 0);
  ASSERT_EQ(write(fd.get(), "12345", 5), 5);
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 10);
}

TEST_F(StatTest, HardLinkSharesInodeAndCountsLinks) {
  ASSERT_OK(link(file_.c_str(), dir_.Path("hard").c_str()));
  struct stat a, b;
  ASSERT_OK(stat(file_.c_str(), &a));
  ASSERT_OK(stat(dir_.Path("hard").c_str(), &b));
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
  ASSERT_OK(unlink(file_.c_str()));
  ASSERT_OK(stat(dir_.Path("hard").c_str(), &b));
  EXPECT_EQ(b.st_nlink, 1u);
}

TEST_F(StatTest, DistinctFilesHaveDistinctInodes) {
  ASSERT_TRUE(WriteFile(dir_.Path("g"), ""));
  struct stat a, b;
  ASSERT_OK(stat(file_.c_str(), &a));
  ASSERT_OK(stat(dir_.Path("g").c_str(), &b));
  EXPECT_NE(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_dev, b.st_dev);
}

TEST_F(StatTest, FstatMatchesStat) {
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  struct stat a, b;
  ASSERT_OK(fstat(fd.get(), &a));
  ASSERT_OK(stat(file_.c_str(), &b));
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_dev, b.st_dev);
  EXPECT_EQ(a.st_mode, b.st_mode);
  EXPECT_EQ(a.st_size, b.st_size);
}

TEST_F(StatTest, FstatOfUnlinkedFile) {
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  ASSERT_OK(unlink(file_.c_str()));
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_EQ(st.st_size, 5);
}

TEST_F(StatTest, FstatPipeIsFifo) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  struct stat st;
  ASSERT_OK(fstat(r.get(), &st));
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << std::oct << st.st_mode;
}

TEST_F(StatTest, FstatBadFdIsEBADF) {
  struct stat st;
  EXPECT_ERRNO(EBADF, fstat(-1, &st));
  EXPECT_ERRNO(EBADF, fstat(1000000, &st));
}

TEST_F(StatTest, FstatatRelativeToDirFd) {
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0);
  struct stat st;
  ASSERT_OK(fstatat(dfd.get(), "f", &st, 0));
  EXPECT_EQ(st.st_size, 5);
  ASSERT_OK(fstatat(dfd.get(), "link", &st, 0));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  ASSERT_OK(fstatat(dfd.get(), "link", &st, AT_SYMLINK_NOFOLLOW));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_ERRNO(ENOENT, fstatat(dfd.get(), "missing", &st, 0));
}

TEST_F(StatTest, FstatatEmptyPath) {
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  struct stat st;
  // Raw syscalls: glibc may turn an empty path into fstat().
  ASSERT_EQ(syscall(SYS_newfstatat, fd.get(), "", &st, AT_EMPTY_PATH), 0)
      << ErrnoName(errno);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 5);
  EXPECT_ERRNO(ENOENT, syscall(SYS_newfstatat, fd.get(), "", &st, 0));
  // AT_EMPTY_PATH with AT_FDCWD stats the working directory.
  ASSERT_EQ(syscall(SYS_newfstatat, AT_FDCWD, "", &st, AT_EMPTY_PATH), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(StatTest, FstatatRelativeWithFileFdIsENOTDIR) {
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  struct stat st;
  EXPECT_ERRNO(ENOTDIR, syscall(SYS_newfstatat, fd.get(), "x", &st, 0));
}

TEST_F(StatTest, FstatatBadFlagsIsEINVAL) {
  struct stat st;
  EXPECT_ERRNO(EINVAL,
               syscall(SYS_newfstatat, AT_FDCWD, file_.c_str(), &st, 0x1));
}

TEST_F(StatTest, FstatatNofollowOnTrailingSlashFollows) {
  // A trailing slash forces the link to be followed, as for a directory.
  ASSERT_OK(symlink("d", dir_.Path("dlink").c_str()));
  struct stat st;
  ASSERT_OK(fstatat(AT_FDCWD, (dir_.Path("dlink") + "/").c_str(), &st,
                    AT_SYMLINK_NOFOLLOW));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_F(StatTest, StatxBasic) {
  struct statx stx = {};
  ASSERT_EQ(
      syscall(SYS_statx, AT_FDCWD, file_.c_str(), 0, STATX_BASIC_STATS, &stx),
      0)
      << ErrnoName(errno);
  EXPECT_EQ(stx.stx_mask & STATX_BASIC_STATS & ~STATX_BLOCKS,
            STATX_BASIC_STATS & ~STATX_BLOCKS);
  EXPECT_TRUE(S_ISREG(stx.stx_mode));
  EXPECT_EQ(stx.stx_mode & 07777, 0640u);
  EXPECT_EQ(stx.stx_size, 5u);
  EXPECT_EQ(stx.stx_nlink, 1u);
  EXPECT_EQ(stx.stx_uid, geteuid());
  struct stat st;
  ASSERT_OK(stat(file_.c_str(), &st));
  EXPECT_EQ(stx.stx_ino, st.st_ino);
  EXPECT_EQ(makedev(stx.stx_dev_major, stx.stx_dev_minor), st.st_dev);
  EXPECT_EQ(stx.stx_mtime.tv_sec, st.st_mtim.tv_sec);
  EXPECT_EQ(stx.stx_mtime.tv_nsec, static_cast<uint32_t>(st.st_mtim.tv_nsec));
}

TEST_F(StatTest, StatxSymlinkNofollow) {
  struct statx stx = {};
  ASSERT_EQ(syscall(SYS_statx, AT_FDCWD, link_.c_str(), AT_SYMLINK_NOFOLLOW,
                    STATX_BASIC_STATS, &stx),
            0);
  EXPECT_TRUE(S_ISLNK(stx.stx_mode));
  EXPECT_EQ(stx.stx_size, 1u);
  ASSERT_EQ(
      syscall(SYS_statx, AT_FDCWD, link_.c_str(), 0, STATX_BASIC_STATS, &stx),
      0);
  EXPECT_TRUE(S_ISREG(stx.stx_mode));
}

TEST_F(StatTest, StatxDirectory) {
  struct statx stx = {};
  ASSERT_EQ(syscall(SYS_statx, AT_FDCWD, dir_path_.c_str(), 0,
                    STATX_BASIC_STATS, &stx),
            0);
  EXPECT_TRUE(S_ISDIR(stx.stx_mode));
  if (DirLinkCountsAreClassic()) {
    EXPECT_EQ(stx.stx_nlink, 2u);
  }
}

TEST_F(StatTest, StatxEmptyPath) {
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  struct statx stx = {};
  ASSERT_EQ(
      syscall(SYS_statx, fd.get(), "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx),
      0)
      << ErrnoName(errno);
  EXPECT_EQ(stx.stx_size, 5u);
  EXPECT_ERRNO(ENOENT,
               syscall(SYS_statx, fd.get(), "", 0, STATX_BASIC_STATS, &stx));
}

TEST_F(StatTest, StatxErrors) {
  struct statx stx;
  EXPECT_ERRNO(ENOENT,
               syscall(SYS_statx, AT_FDCWD, dir_.Path("missing").c_str(), 0,
                       STATX_BASIC_STATS, &stx));
  EXPECT_ERRNO(EBADF, syscall(SYS_statx, -1, "x", 0, STATX_BASIC_STATS, &stx));
  // Unknown flag bits, and the reserved mask bit.
  EXPECT_ERRNO(EINVAL, syscall(SYS_statx, AT_FDCWD, file_.c_str(), 0x80000000,
                               STATX_BASIC_STATS, &stx));
  EXPECT_ERRNO(EINVAL, syscall(SYS_statx, AT_FDCWD, file_.c_str(), 0,
                               STATX__RESERVED, &stx));
  // AT_STATX_FORCE_SYNC and AT_STATX_DONT_SYNC together.
  EXPECT_ERRNO(EINVAL, syscall(SYS_statx, AT_FDCWD, file_.c_str(),
                               AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC,
                               STATX_BASIC_STATS, &stx));
}

// chmod(2) and fchmod(2) by an owner outside the file's group and without
// CAP_FSETID clear S_ISGID, of a directory as of a file
// (setattr_prepare()'s in_group_or_capable()).
TEST_F(StatTest, ChmodOutsideTheGroupClearsSetgidOfDirectories) {
  if (!HaveCap(CAP_CHOWN) || !HaveCap(CAP_SETUID)) GTEST_SKIP() << "needs root";
  ASSERT_OK(chmod(dir_.path().c_str(), 0755));
  ASSERT_OK(chown(dir_path_.c_str(), 65534, 54321));
  ASSERT_OK(chown(file_.c_str(), 65534, 54321));
  FileDescriptor top(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(top.get(), 0);
  const int dfd = top.get();
  // nobody (gid 65534, no other groups) owns both, outside group 54321.
  EXPECT_EQ(RunAsNobody([dfd] {
              struct stat st;
              if (fchmodat(dfd, "d", 03777, 0) != 0) return 1;
              if (fstatat(dfd, "d", &st, 0) != 0 || (st.st_mode & 07777) != 01777) return 2;
              const int fd = openat(dfd, "d", O_RDONLY | O_DIRECTORY);
              if (fd < 0 || fchmod(fd, 02755) != 0) return 3;
              if (fstat(fd, &st) != 0 || (st.st_mode & 07777) != 0755) return 4;
              if (fchmodat(dfd, "f", 02644, 0) != 0) return 5;
              if (fstatat(dfd, "f", &st, 0) != 0 || (st.st_mode & 07777) != 0644) return 6;
              return 0;
            }),
            0);
  // The group's own members (here root, with CAP_FSETID) keep it.
  ASSERT_OK(chmod(dir_path_.c_str(), 02755));
  struct stat st;
  ASSERT_OK(stat(dir_path_.c_str(), &st));
  EXPECT_EQ(st.st_mode & 07777, 02755u);
}

}  // namespace
}  // namespace syscall_test
