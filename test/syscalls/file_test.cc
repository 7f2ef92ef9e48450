// open/openat/creat, read/write and friends, lseek, close, dup*, fcntl,
// pipes, umask, truncate and access.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

class FileTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

// ---------------------------------------------------------------- open

TEST_F(FileTest, OpenNonexistentIsENOENT) {
  EXPECT_ERRNO(ENOENT, open(dir_.Path("missing").c_str(), O_RDONLY));
}

TEST_F(FileTest, OpenCreatCreatesEmptyFile) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 0);
}

TEST_F(FileTest, OpenCreatExclOnExistingIsEEXIST) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x"));
  EXPECT_ERRNO(EEXIST,
               open(dir_.Path("f").c_str(), O_RDWR | O_CREAT | O_EXCL, 0600));
}

TEST_F(FileTest, OpenCreatExclOnDanglingSymlinkIsEEXIST) {
  ASSERT_OK(symlink(dir_.Path("nowhere").c_str(), dir_.Path("link").c_str()));
  EXPECT_ERRNO(
      EEXIST, open(dir_.Path("link").c_str(), O_RDWR | O_CREAT | O_EXCL, 0600));
  // O_EXCL did not follow the link.
  EXPECT_ERRNO(ENOENT, access(dir_.Path("nowhere").c_str(), F_OK));
}

TEST_F(FileTest, OpenCreatFollowsDanglingSymlink) {
  ASSERT_OK(symlink(dir_.Path("target").c_str(), dir_.Path("link").c_str()));
  FileDescriptor fd(open(dir_.Path("link").c_str(), O_WRONLY | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  EXPECT_OK(access(dir_.Path("target").c_str(), F_OK));
}

TEST_F(FileTest, OpenCreatInMissingDirIsENOENT) {
  EXPECT_ERRNO(ENOENT,
               open(dir_.Path("nodir/f").c_str(), O_RDWR | O_CREAT, 0600));
}

TEST_F(FileTest, OpenTruncEmptiesFile) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "hello"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_WRONLY | O_TRUNC));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 0);
}

TEST_F(FileTest, OpenAppendWritesAtEnd) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "abc"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_APPEND));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  ASSERT_EQ(write(fd.get(), "de", 2), 2);
  // The offset is left at the end of the file after the append.
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 5);
  EXPECT_EQ(ReadFile(dir_.Path("f")), "abcde");
}

TEST_F(FileTest, PwriteWithAppendAppends) {
  // pwrite(2) BUGS: on Linux, with O_APPEND pwrite appends whatever offset.
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "abc"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_WRONLY | O_APPEND));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  ASSERT_EQ(pwrite(fd.get(), "X", 1, 0), 1);
  EXPECT_EQ(ReadFile(dir_.Path("f")), "abcX");
}

TEST_F(FileTest, OpenDirectoryOnFileIsENOTDIR) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x"));
  EXPECT_ERRNO(ENOTDIR, open(dir_.Path("f").c_str(), O_RDONLY | O_DIRECTORY));
}

TEST_F(FileTest, OpenFileWithTrailingSlashIsENOTDIR) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x"));
  EXPECT_ERRNO(ENOTDIR, open((dir_.Path("f") + "/").c_str(), O_RDONLY));
}

TEST_F(FileTest, OpenDirectoryOnDirWorks) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  EXPECT_GE(fd.get(), 0) << ErrnoName(errno);
}

TEST_F(FileTest, OpenDirForWritingIsEISDIR) {
  EXPECT_ERRNO(EISDIR, open(dir_.path().c_str(), O_WRONLY));
  EXPECT_ERRNO(EISDIR, open(dir_.path().c_str(), O_RDWR));
}

TEST_F(FileTest, ReadDirectoryIsEISDIR) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  char buf[8];
  EXPECT_ERRNO(EISDIR, read(fd.get(), buf, sizeof(buf)));
}

TEST_F(FileTest, OpenNofollowOnSymlinkIsELOOP) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x"));
  ASSERT_OK(symlink(dir_.Path("f").c_str(), dir_.Path("link").c_str()));
  EXPECT_ERRNO(ELOOP, open(dir_.Path("link").c_str(), O_RDONLY | O_NOFOLLOW));
  // Without O_NOFOLLOW the link is followed.
  FileDescriptor fd(open(dir_.Path("link").c_str(), O_RDONLY));
  EXPECT_GE(fd.get(), 0) << ErrnoName(errno);
}

TEST_F(FileTest, SymlinkLoopIsELOOP) {
  ASSERT_OK(symlink(dir_.Path("b").c_str(), dir_.Path("a").c_str()));
  ASSERT_OK(symlink(dir_.Path("a").c_str(), dir_.Path("b").c_str()));
  EXPECT_ERRNO(ELOOP, open(dir_.Path("a").c_str(), O_RDONLY));
}

TEST_F(FileTest, OpenPathComponentIsFileIsENOTDIR) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x"));
  EXPECT_ERRNO(ENOTDIR, open(dir_.Path("f/g").c_str(), O_RDONLY));
}

TEST_F(FileTest, OpenatRelativeToDirFd) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "data"));
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0) << ErrnoName(errno);
  FileDescriptor fd(openat(dfd.get(), "f", O_RDONLY));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  char buf[8] = {};
  EXPECT_EQ(read(fd.get(), buf, sizeof(buf)), 4);
  EXPECT_STREQ(buf, "data");
}

TEST_F(FileTest, OpenatAbsolutePathIgnoresDirFd) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "data"));
  FileDescriptor fd(openat(-1, dir_.Path("f").c_str(), O_RDONLY));
  EXPECT_GE(fd.get(), 0) << ErrnoName(errno);
}

TEST_F(FileTest, OpenatRelativeWithFileDirFdIsENOTDIR) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "data"));
  FileDescriptor ffd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(ffd.get(), 0) << ErrnoName(errno);
  EXPECT_ERRNO(ENOTDIR, openat(ffd.get(), "x", O_RDONLY));
}

TEST_F(FileTest, OpenatRelativeWithBadDirFdIsEBADF) {
  EXPECT_ERRNO(EBADF, openat(-1, "x", O_RDONLY));
  EXPECT_ERRNO(EBADF, openat(1000000, "x", O_RDONLY));
}

TEST_F(FileTest, OpenatAtFdcwd) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "data"));
  FileDescriptor fd(openat(AT_FDCWD, dir_.Path("f").c_str(), O_RDONLY));
  EXPECT_GE(fd.get(), 0) << ErrnoName(errno);
}

TEST_F(FileTest, OpenEmptyPathIsENOENT) {
  EXPECT_ERRNO(ENOENT, open("", O_RDONLY));
}

TEST_F(FileTest, OpenReturnsLowestFreeFd) {
  FileDescriptor a(open(dir_.path().c_str(), O_RDONLY));
  FileDescriptor b(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(a.get(), 0);
  ASSERT_GE(b.get(), 0);
  int freed = a.get();
  a.reset();
  FileDescriptor c(open(dir_.path().c_str(), O_RDONLY));
  EXPECT_EQ(c.get(), freed);
}

TEST_F(FileTest, CreatIsWriteOnlyCreateTrunc) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "old contents"));
  FileDescriptor fd(creat(dir_.Path("f").c_str(), 0600));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & O_ACCMODE, O_WRONLY);
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 0);
  char c;
  EXPECT_ERRNO(EBADF, read(fd.get(), &c, 1));
}

// ---------------------------------------------------------------- read/write

TEST_F(FileTest, WriteThenReadBack) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  ASSERT_EQ(write(fd.get(), "hello world", 11), 11);
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  char buf[32] = {};
  EXPECT_EQ(read(fd.get(), buf, sizeof(buf)), 11);
  EXPECT_STREQ(buf, "hello world");
  // At end of file read returns 0.
  EXPECT_EQ(read(fd.get(), buf, sizeof(buf)), 0);
}

TEST_F(FileTest, ReadOnWriteOnlyFdIsEBADF) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_WRONLY | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  char c;
  EXPECT_ERRNO(EBADF, read(fd.get(), &c, 1));
}

TEST_F(FileTest, WriteOnReadOnlyFdIsEBADF) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_ERRNO(EBADF, write(fd.get(), "y", 1));
}

TEST_F(FileTest, ReadWriteBadFdIsEBADF) {
  char c = 0;
  EXPECT_ERRNO(EBADF, read(-1, &c, 1));
  EXPECT_ERRNO(EBADF, write(1000000, &c, 1));
}

TEST_F(FileTest, ReadIntoBadBufferIsEFAULT) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "xyz"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  // Raw syscall: glibc's fortified wrappers might notice the bad pointer.
  EXPECT_ERRNO(EFAULT,
               syscall(SYS_read, fd.get(), reinterpret_cast<void*>(8), 3));
}

TEST_F(FileTest, ZeroLengthReadWriteReturnZero) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  char c;
  EXPECT_EQ(write(fd.get(), &c, 0), 0);
  EXPECT_EQ(read(fd.get(), &c, 0), 0);
}

TEST_F(FileTest, PreadPwriteDoNotMoveOffset) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  ASSERT_EQ(write(fd.get(), "0123456789", 10), 10);
  ASSERT_EQ(lseek(fd.get(), 2, SEEK_SET), 2);
  EXPECT_EQ(pwrite(fd.get(), "AB", 2, 5), 2);
  char buf[4] = {};
  EXPECT_EQ(pread(fd.get(), buf, 3, 4), 3);
  EXPECT_STREQ(buf, "4AB");
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 2);
  // pread past the end returns 0.
  EXPECT_EQ(pread(fd.get(), buf, 3, 100), 0);
}

TEST_F(FileTest, PreadNegativeOffsetIsEINVAL) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  char buf[4];
  EXPECT_ERRNO(EINVAL, syscall(SYS_pread64, fd.get(), buf, 1, -1L));
  EXPECT_ERRNO(EINVAL, syscall(SYS_pwrite64, fd.get(), buf, 1, -1L));
}

TEST_F(FileTest, PreadOnPipeIsESPIPE) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  char buf[4];
  EXPECT_ERRNO(ESPIPE, pread(r.get(), buf, 1, 0));
  EXPECT_ERRNO(ESPIPE, pwrite(w.get(), buf, 1, 0));
}

TEST_F(FileTest, PwritePastEndLeavesZeroHole) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  ASSERT_EQ(pwrite(fd.get(), "Z", 1, 4), 1);
  EXPECT_EQ(ReadFile(dir_.Path("f")), std::string("\0\0\0\0Z", 5));
}

TEST_F(FileTest, WritevGathersReadvScatters) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  char a[] = "abc", b[] = "", c[] = "defgh";
  struct iovec out[3] = {{a, 3}, {b, 0}, {c, 5}};
  ASSERT_EQ(writev(fd.get(), out, 3), 8);
  ASSERT_EQ(lseek(fd.get(), 0, SEEK_SET), 0);
  char x[2] = {}, y[10] = {};
  struct iovec in[2] = {{x, 2}, {y, sizeof(y)}};
  EXPECT_EQ(readv(fd.get(), in, 2), 8);
  EXPECT_EQ(std::string(x, 2), "ab");
  EXPECT_EQ(std::string(y, 6), "cdefgh");
}

TEST_F(FileTest, ReadvWritevBadCountIsEINVAL) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  char buf[1];
  struct iovec iov = {buf, 1};
  EXPECT_ERRNO(EINVAL, syscall(SYS_writev, fd.get(), &iov, -1));
  EXPECT_ERRNO(EINVAL, syscall(SYS_readv, fd.get(), &iov, IOV_MAX + 1));
  EXPECT_EQ(writev(fd.get(), &iov, 0), 0);
}

TEST_F(FileTest, PreadvPwritev) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  char a[] = "xy", b[] = "z";
  struct iovec out[2] = {{a, 2}, {b, 1}};
  ASSERT_EQ(pwritev(fd.get(), out, 2, 3), 3);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 0);
  char in_buf[3] = {};
  struct iovec in = {in_buf, 3};
  EXPECT_EQ(preadv(fd.get(), &in, 1, 3), 3);
  EXPECT_EQ(std::string(in_buf, 3), "xyz");
}

// ---------------------------------------------------------------- lseek

TEST_F(FileTest, LseekWhence) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "0123456789"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(lseek(fd.get(), 3, SEEK_SET), 3);
  EXPECT_EQ(lseek(fd.get(), 2, SEEK_CUR), 5);
  EXPECT_EQ(lseek(fd.get(), -1, SEEK_CUR), 4);
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_END), 10);
  EXPECT_EQ(lseek(fd.get(), -3, SEEK_END), 7);
  char c;
  ASSERT_EQ(read(fd.get(), &c, 1), 1);
  EXPECT_EQ(c, '7');
  // Seeking past the end is allowed.
  EXPECT_EQ(lseek(fd.get(), 100, SEEK_SET), 100);
  EXPECT_EQ(read(fd.get(), &c, 1), 0);
}

TEST_F(FileTest, LseekNegativeResultIsEINVAL) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "0123"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), -1, SEEK_SET));
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), -5, SEEK_END));
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), -1, SEEK_CUR));
  // The offset is unchanged after a failed lseek.
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 0);
}

TEST_F(FileTest, LseekBadWhenceIsEINVAL) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "0123"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_ERRNO(EINVAL, lseek(fd.get(), 0, 42));
}

TEST_F(FileTest, LseekOnPipeIsESPIPE) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_ERRNO(ESPIPE, lseek(r.get(), 0, SEEK_SET));
}

TEST_F(FileTest, LseekBadFdIsEBADF) {
  EXPECT_ERRNO(EBADF, lseek(-1, 0, SEEK_SET));
}

// ---------------------------------------------------------------- close

TEST_F(FileTest, CloseBadFdIsEBADF) {
  EXPECT_ERRNO(EBADF, close(-1));
  EXPECT_ERRNO(EBADF, close(1000000));
}

TEST_F(FileTest, DoubleCloseIsEBADF) {
  int fd = open(dir_.path().c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  EXPECT_OK(close(fd));
  EXPECT_ERRNO(EBADF, close(fd));
}

// ---------------------------------------------------------------- dup

TEST_F(FileTest, DupReturnsLowestFreeFdAndSharesOffset) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "0123456789"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  FileDescriptor hole(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(hole.get(), 0);
  int lowest = hole.get();
  hole.reset();
  FileDescriptor d(dup(fd.get()));
  EXPECT_EQ(d.get(), lowest);
  ASSERT_EQ(lseek(fd.get(), 4, SEEK_SET), 4);
  EXPECT_EQ(lseek(d.get(), 0, SEEK_CUR), 4);
}

TEST_F(FileTest, DupClearsCloexec) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), FD_CLOEXEC);
  FileDescriptor d(dup(fd.get()));
  ASSERT_GE(d.get(), 0);
  EXPECT_EQ(fcntl(d.get(), F_GETFD), 0);
}

TEST_F(FileTest, DupBadFdIsEBADF) { EXPECT_ERRNO(EBADF, dup(-1)); }

TEST_F(FileTest, Dup2ReplacesTarget) {
  ASSERT_TRUE(WriteFile(dir_.Path("a"), "A"));
  ASSERT_TRUE(WriteFile(dir_.Path("b"), "B"));
  FileDescriptor a(open(dir_.Path("a").c_str(), O_RDONLY));
  FileDescriptor b(open(dir_.Path("b").c_str(), O_RDONLY));
  ASSERT_GE(a.get(), 0);
  ASSERT_GE(b.get(), 0);
  EXPECT_EQ(dup2(a.get(), b.get()), b.get());
  char c = 0;
  EXPECT_EQ(read(b.get(), &c, 1), 1);
  EXPECT_EQ(c, 'A');
}

TEST_F(FileTest, Dup2SameFdReturnsFd) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(dup2(fd.get(), fd.get()), fd.get());
  // dup2 to itself leaves the flags alone.
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), FD_CLOEXEC);
}

TEST_F(FileTest, Dup2SameBadFdIsEBADF) {
  EXPECT_ERRNO(EBADF, dup2(1000000, 1000000));
}

TEST_F(FileTest, Dup2ToHighFd) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  FileDescriptor d(dup2(fd.get(), 500));
  EXPECT_EQ(d.get(), 500);
}

TEST_F(FileTest, Dup2BeyondRlimitIsEBADF) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_ERRNO(EBADF, dup2(fd.get(), -1));
  EXPECT_ERRNO(EBADF, dup2(fd.get(), INT_MAX));
}

TEST_F(FileTest, Dup3SameFdIsEINVAL) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_ERRNO(EINVAL, dup3(fd.get(), fd.get(), 0));
}

TEST_F(FileTest, Dup3Cloexec) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  FileDescriptor d(dup3(fd.get(), 501, O_CLOEXEC));
  ASSERT_EQ(d.get(), 501) << ErrnoName(errno);
  EXPECT_EQ(fcntl(d.get(), F_GETFD), FD_CLOEXEC);
}

TEST_F(FileTest, Dup3BadFlagsIsEINVAL) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_ERRNO(EINVAL, dup3(fd.get(), 502, O_NONBLOCK));
}

// ---------------------------------------------------------------- fcntl

TEST_F(FileTest, FcntlDupfdUsesLowestAtOrAboveArg) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  FileDescriptor d(fcntl(fd.get(), F_DUPFD, 100));
  EXPECT_EQ(d.get(), 100);
  FileDescriptor d2(fcntl(fd.get(), F_DUPFD, 100));
  EXPECT_EQ(d2.get(), 101);
  EXPECT_EQ(fcntl(d.get(), F_GETFD), 0);
}

TEST_F(FileTest, FcntlDupfdCloexec) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  FileDescriptor d(fcntl(fd.get(), F_DUPFD_CLOEXEC, 0));
  ASSERT_GE(d.get(), 0);
  EXPECT_EQ(fcntl(d.get(), F_GETFD), FD_CLOEXEC);
}

TEST_F(FileTest, FcntlDupfdNegativeIsEINVAL) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_ERRNO(EINVAL, fcntl(fd.get(), F_DUPFD, -1));
}

TEST_F(FileTest, FcntlGetSetFd) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), 0);
  EXPECT_EQ(fcntl(fd.get(), F_SETFD, FD_CLOEXEC), 0);
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl(fd.get(), F_SETFD, 0), 0);
  EXPECT_EQ(fcntl(fd.get(), F_GETFD), 0);
}

TEST_F(FileTest, FcntlGetFlReportsAccessModeAndFlags) {
  FileDescriptor fd(
      open(dir_.Path("f").c_str(), O_RDWR | O_CREAT | O_APPEND, 0600));
  ASSERT_GE(fd.get(), 0);
  int fl = fcntl(fd.get(), F_GETFL);
  ASSERT_GE(fl, 0);
  EXPECT_EQ(fl & O_ACCMODE, O_RDWR);
  EXPECT_EQ(fl & O_APPEND, O_APPEND);
  // Creation flags are not kept.
  EXPECT_EQ(fl & (O_CREAT | O_TRUNC | O_EXCL), 0);
}

TEST_F(FileTest, FcntlSetFlChangesStatusFlagsNotAccessMode) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  ASSERT_EQ(fcntl(fd.get(), F_SETFL, O_RDWR | O_APPEND | O_NONBLOCK), 0);
  int fl = fcntl(fd.get(), F_GETFL);
  EXPECT_EQ(fl & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(fl & O_APPEND, O_APPEND);
  EXPECT_EQ(fl & O_NONBLOCK, O_NONBLOCK);
  ASSERT_EQ(fcntl(fd.get(), F_SETFL, 0), 0);
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & (O_APPEND | O_NONBLOCK), 0);
}

TEST_F(FileTest, FcntlStatusFlagsSharedByDup) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  FileDescriptor d(dup(fd.get()));
  ASSERT_EQ(fcntl(fd.get(), F_SETFL, O_APPEND), 0);
  EXPECT_EQ(fcntl(d.get(), F_GETFL) & O_APPEND, O_APPEND);
}

TEST_F(FileTest, FcntlBadFdIsEBADF) {
  EXPECT_ERRNO(EBADF, fcntl(-1, F_GETFD));
  EXPECT_ERRNO(EBADF, fcntl(1000000, F_GETFL));
}

TEST_F(FileTest, FcntlBadCommandIsEINVAL) {
  FileDescriptor fd(open(dir_.path().c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_ERRNO(EINVAL, syscall(SYS_fcntl, fd.get(), 0x7fffffff, 0));
}

// ---------------------------------------------------------------- pipes

TEST(PipeTest, DataFlowsInOrder) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  ASSERT_EQ(write(w.get(), "abc", 3), 3);
  ASSERT_EQ(write(w.get(), "def", 3), 3);
  char buf[16] = {};
  EXPECT_EQ(read(r.get(), buf, sizeof(buf)), 6);
  EXPECT_STREQ(buf, "abcdef");
}

TEST(PipeTest, EndsHaveRightAccessModes) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_EQ(fcntl(r.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(fcntl(w.get(), F_GETFL) & O_ACCMODE, O_WRONLY);
  char c = 'x';
  EXPECT_ERRNO(EBADF, write(r.get(), &c, 1));
  EXPECT_ERRNO(EBADF, read(w.get(), &c, 1));
}

TEST(PipeTest, EofAfterWriterCloses) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  ASSERT_EQ(write(w.get(), "z", 1), 1);
  w.reset();
  char buf[4];
  EXPECT_EQ(read(r.get(), buf, sizeof(buf)), 1);
  EXPECT_EQ(read(r.get(), buf, sizeof(buf)), 0);
}

TEST(PipeTest, EofWhenWriterInChildExits) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(p[0]);
    _exit(write(p[1], "child", 5) == 5 ? 0 : 1);
  }
  w.reset();
  std::string got;
  char buf[16];
  ssize_t n;
  while ((n = read(r.get(), buf, sizeof(buf))) > 0) got.append(buf, n);
  EXPECT_EQ(n, 0);
  EXPECT_EQ(got, "child");
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(PipeTest, WriteWithNoReaderIsEPIPEWhenSigpipeIgnored) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  r.reset();
  struct sigaction ign = {}, old = {};
  ign.sa_handler = SIG_IGN;
  ASSERT_OK(sigaction(SIGPIPE, &ign, &old));
  EXPECT_ERRNO(EPIPE, write(w.get(), "x", 1));
  ASSERT_OK(sigaction(SIGPIPE, &old, nullptr));
}

TEST(PipeTest, WriteWithNoReaderRaisesSigpipe) {
  int status = RunInChild([] {
    signal(SIGPIPE, SIG_DFL);
    int p[2];
    if (pipe(p) != 0) return 1;
    close(p[0]);
    if (write(p[1], "x", 1) >= 0) return 2;
    return 3;  // Not killed.
  });
  ASSERT_TRUE(WIFSIGNALED(status)) << "status " << status;
  EXPECT_EQ(WTERMSIG(status), SIGPIPE);
}

TEST(PipeTest, Pipe2Flags) {
  int p[2];
  ASSERT_OK(pipe2(p, O_CLOEXEC | O_NONBLOCK));
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_EQ(fcntl(r.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl(w.get(), F_GETFD), FD_CLOEXEC);
  EXPECT_EQ(fcntl(r.get(), F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  char c;
  EXPECT_ERRNO(EAGAIN, read(r.get(), &c, 1));
}

TEST(PipeTest, Pipe2BadFlagsIsEINVAL) {
  int p[2];
  EXPECT_ERRNO(EINVAL, pipe2(p, O_APPEND));
}

TEST(PipeTest, PipeBadPointerIsEFAULT) {
  EXPECT_ERRNO(EFAULT, syscall(SYS_pipe2, reinterpret_cast<int*>(8), 0));
}

TEST(PipeTest, NonblockingFullPipeIsEAGAIN) {
  int p[2];
  ASSERT_OK(pipe2(p, O_NONBLOCK));
  FileDescriptor r(p[0]), w(p[1]);
  std::string chunk(4096, 'x');
  ssize_t total = 0, n;
  while ((n = write(w.get(), chunk.data(), chunk.size())) > 0) {
    total += n;
    ASSERT_LT(total, 64 << 20) << "pipe never filled";
  }
  EXPECT_EQ(n, -1);
  EXPECT_EQ(errno, EAGAIN);
  EXPECT_GE(total, 4096);
}

// ---------------------------------------------------------------- umask

TEST_F(FileTest, UmaskReturnsOldAndMasksCreate) {
  mode_t old = umask(022);
  EXPECT_EQ(umask(077), 022);
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0666));
  ASSERT_GE(fd.get(), 0);
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_OK(mkdir(dir_.Path("d").c_str(), 0777));
  ASSERT_OK(stat(dir_.Path("d").c_str(), &st));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // Only the permission bits are kept.
  EXPECT_EQ(umask(0777 | 07000), 077);
  EXPECT_EQ(umask(old), 0777);
}

// ---------------------------------------------------------------- truncate

TEST_F(FileTest, TruncateShrinksAndGrowsWithZeros) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "0123456789"));
  ASSERT_OK(truncate(dir_.Path("f").c_str(), 4));
  EXPECT_EQ(ReadFile(dir_.Path("f")), "0123");
  ASSERT_OK(truncate(dir_.Path("f").c_str(), 6));
  EXPECT_EQ(ReadFile(dir_.Path("f")), std::string("0123\0\0", 6));
}

TEST_F(FileTest, FtruncateDoesNotMoveOffset) {
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR | O_CREAT, 0600));
  ASSERT_GE(fd.get(), 0);
  ASSERT_EQ(write(fd.get(), "0123456789", 10), 10);
  ASSERT_OK(ftruncate(fd.get(), 2));
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), 10);
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 2);
}

TEST_F(FileTest, FtruncateReadOnlyFdIsEINVAL) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x"));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_ERRNO(EINVAL, ftruncate(fd.get(), 0));
}

TEST_F(FileTest, TruncateNegativeIsEINVAL) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x"));
  EXPECT_ERRNO(EINVAL, truncate(dir_.Path("f").c_str(), -1));
  FileDescriptor fd(open(dir_.Path("f").c_str(), O_RDWR));
  ASSERT_GE(fd.get(), 0);
  EXPECT_ERRNO(EINVAL, ftruncate(fd.get(), -1));
}

TEST_F(FileTest, TruncateDirectoryIsEISDIR) {
  EXPECT_ERRNO(EISDIR, truncate(dir_.path().c_str(), 0));
}

TEST_F(FileTest, TruncateMissingIsENOENT) {
  EXPECT_ERRNO(ENOENT, truncate(dir_.Path("missing").c_str(), 0));
}

// ---------------------------------------------------------------- access

TEST_F(FileTest, AccessExistingAndMissing) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x", 0644));
  EXPECT_EQ(access(dir_.Path("f").c_str(), F_OK), 0);
  EXPECT_EQ(access(dir_.Path("f").c_str(), R_OK | W_OK), 0);
  EXPECT_ERRNO(ENOENT, access(dir_.Path("missing").c_str(), F_OK));
  EXPECT_ERRNO(ENOTDIR, access(dir_.Path("f/x").c_str(), F_OK));
}

TEST_F(FileTest, AccessExecuteNeedsAnExecuteBit) {
  // Even root (CAP_DAC_OVERRIDE) needs one x bit to execute a regular file.
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x", 0644));
  EXPECT_ERRNO(EACCES, access(dir_.Path("f").c_str(), X_OK));
  ASSERT_OK(chmod(dir_.Path("f").c_str(), 0744));
  EXPECT_EQ(access(dir_.Path("f").c_str(), X_OK), 0);
}

TEST_F(FileTest, AccessBadModeIsEINVAL) {
  EXPECT_ERRNO(EINVAL, access(dir_.path().c_str(), 0x100));
}

TEST_F(FileTest, FaccessatRelativeToDirFd) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x"));
  FileDescriptor dfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0);
  EXPECT_EQ(faccessat(dfd.get(), "f", R_OK, 0), 0);
  EXPECT_ERRNO(ENOENT, faccessat(dfd.get(), "g", F_OK, 0));
  EXPECT_ERRNO(EBADF, faccessat(-1, "f", F_OK, 0));
}

TEST_F(FileTest, FaccessatSymlinkNofollow) {
  ASSERT_OK(symlink("nowhere", dir_.Path("link").c_str()));
  // The raw syscall has no flags argument; glibc's faccessat emulates
  // AT_SYMLINK_NOFOLLOW or uses faccessat2.
  EXPECT_ERRNO(ENOENT, faccessat(AT_FDCWD, dir_.Path("link").c_str(), F_OK, 0));
  EXPECT_EQ(
      faccessat(AT_FDCWD, dir_.Path("link").c_str(), F_OK, AT_SYMLINK_NOFOLLOW),
      0)
      << ErrnoName(errno);
}

TEST_F(FileTest, FaccessatRawSyscall) {
  ASSERT_TRUE(WriteFile(dir_.Path("f"), "x", 0644));
  EXPECT_EQ(syscall(SYS_faccessat, AT_FDCWD, dir_.Path("f").c_str(), R_OK), 0);
  EXPECT_ERRNO(EACCES,
               syscall(SYS_faccessat, AT_FDCWD, dir_.Path("f").c_str(), X_OK));
}

}  // namespace
}  // namespace syscall_test
