// Data-sync calls as a database makes them (PostgreSQL flushes written
// ranges with sync_file_range(SYNC_FILE_RANGE_WRITE) and syncs with
// fdatasync/fsync): argument checks in Linux's order, which files take them.
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <climits>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

TEST(SyncFileRangeTest, RegularFileAndDirectory) {
  TempDir dir;
  FileDescriptor fd(open(dir.Path("f").c_str(), O_CREAT | O_RDWR, 0600));
  ASSERT_GE(fd.get(), 0);
  std::string data(64 * 1024, 'x');
  ASSERT_EQ(write(fd.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
  EXPECT_OK(sync_file_range(fd.get(), 0, 8192, SYNC_FILE_RANGE_WRITE));
  EXPECT_OK(sync_file_range(fd.get(), 0, 0,
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER));
  EXPECT_OK(sync_file_range(fd.get(), 1 << 20, 4096, 0));  // beyond EOF
  EXPECT_OK(sync_file_range(fd.get(), 0, LLONG_MAX, SYNC_FILE_RANGE_WRITE));
  // A read-only open file and a directory have page cache too.
  FileDescriptor ro(open(dir.Path("f").c_str(), O_RDONLY));
  ASSERT_GE(ro.get(), 0);
  EXPECT_OK(sync_file_range(ro.get(), 0, 4096, SYNC_FILE_RANGE_WRITE));
  FileDescriptor d(open(dir.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(d.get(), 0);
  EXPECT_OK(sync_file_range(d.get(), 0, 0, SYNC_FILE_RANGE_WRITE));
  EXPECT_OK(fdatasync(fd.get()));
  EXPECT_OK(fsync(d.get()));
}

TEST(SyncFileRangeTest, BadArguments) {
  // The fd is looked up first (ksys_sync_file_range()), then
  // sync_file_range() checks the flags and the range before the file type.
  EXPECT_ERRNO(EBADF, sync_file_range(-1, 0, 0, 8));
  EXPECT_ERRNO(EBADF, sync_file_range(1000000, 0, 0, 0));
  TempDir dir;
  FileDescriptor fd(open(dir.Path("f").c_str(), O_CREAT | O_RDWR, 0600));
  ASSERT_GE(fd.get(), 0);
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  FileDescriptor r(p[0]), w(p[1]);
  for (int f : {fd.get(), r.get()}) {
    EXPECT_ERRNO(EINVAL, sync_file_range(f, 0, 0, 8));
    EXPECT_ERRNO(EINVAL, sync_file_range(f, -1, 0, 0));
    EXPECT_ERRNO(EINVAL, sync_file_range(f, 0, -1, 0));  // end before offset
    EXPECT_ERRNO(EINVAL, sync_file_range(f, LLONG_MAX, 1, 0));  // end wraps
  }
}

TEST(SyncFileRangeTest, OPathIsBadFd) {
  TempDir dir;
  { FileDescriptor c(open(dir.Path("f").c_str(), O_CREAT | O_WRONLY, 0600)); }
  FileDescriptor p(open(dir.Path("f").c_str(), O_PATH));
  ASSERT_GE(p.get(), 0);
  EXPECT_ERRNO(EBADF, sync_file_range(p.get(), 0, 0, SYNC_FILE_RANGE_WRITE));
}

TEST(SyncFileRangeTest, NoPageCacheIsESPIPE) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_ERRNO(ESPIPE, sync_file_range(r.get(), 0, 0, SYNC_FILE_RANGE_WRITE));
  EXPECT_ERRNO(ESPIPE, sync_file_range(w.get(), 0, 0, 0));
  int s[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, s), 0);
  FileDescriptor s0(s[0]), s1(s[1]);
  EXPECT_ERRNO(ESPIPE, sync_file_range(s0.get(), 0, 0, SYNC_FILE_RANGE_WRITE));
  FileDescriptor null(open("/dev/null", O_WRONLY));
  ASSERT_GE(null.get(), 0);
  EXPECT_ERRNO(ESPIPE, sync_file_range(null.get(), 0, 0, SYNC_FILE_RANGE_WRITE));
  // fsync(2) on a pipe or socket: EINVAL (no ->fsync).
  EXPECT_ERRNO(EINVAL, fdatasync(w.get()));
  EXPECT_ERRNO(EINVAL, fsync(s0.get()));
}

// fsync(2) and fdatasync(2) of a file without ->fsync (the memory devices,
// a terminal) are EINVAL.
TEST(FsyncTest, DevicesWithoutFsyncAreEINVAL) {
  for (const char* path : {"/dev/null", "/dev/zero", "/dev/full", "/dev/urandom", "/dev/ptmx"}) {
    SCOPED_TRACE(path);
    FileDescriptor fd(open(path, O_RDWR | O_NOCTTY));
    ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
    EXPECT_ERRNO(EINVAL, fsync(fd.get()));
    EXPECT_ERRNO(EINVAL, fdatasync(fd.get()));
  }
  // A regular file syncs.
  TempDir dir;
  ASSERT_TRUE(WriteFile(dir.Path("f"), "x"));
  FileDescriptor f(open(dir.Path("f").c_str(), O_RDWR));
  ASSERT_GE(f.get(), 0);
  EXPECT_OK(fsync(f.get()));
  EXPECT_OK(fdatasync(f.get()));
}

}  // namespace
}  // namespace syscall_test
