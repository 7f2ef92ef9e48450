// name_to_handle_at(2) and open_by_handle_at(2): a handle names a file by
// identity (the same bytes through every path to it), opens it again (with
// CAP_DAC_READ_SEARCH) and goes stale when the file is removed; the size,
// flag, pointer and mount checks of both calls.
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

#ifndef AT_HANDLE_FID
#define AT_HANDLE_FID 0x200
#endif
#ifndef AT_HANDLE_CONNECTABLE
#define AT_HANDLE_CONNECTABLE 0x002
#endif

namespace syscall_test {
namespace {

// A struct file_handle with room for MAX_HANDLE_SZ bytes.
struct Handle {
  Handle() : buf(sizeof(file_handle) + MAX_HANDLE_SZ, 0) { get()->handle_bytes = MAX_HANDLE_SZ; }
  file_handle* get() { return reinterpret_cast<file_handle*>(buf.data()); }
  std::string Bytes() {
    return std::string(reinterpret_cast<char*>(get()->f_handle), get()->handle_bytes);
  }
  std::vector<char> buf;
};

long NameToHandle(int dirfd, const char* path, file_handle* h, int* mnt_id, int flags) {
  return syscall(SYS_name_to_handle_at, dirfd, path, h, mnt_id, flags);
}

long OpenByHandle(int mount_fd, file_handle* h, int flags) {
  return syscall(SYS_open_by_handle_at, mount_fd, h, flags);
}

// The handle of `path` (relative to the cwd), or a failed expectation.
Handle HandleOf(const std::string& path, int flags = 0) {
  Handle h;
  int mnt_id;
  EXPECT_EQ(NameToHandle(AT_FDCWD, path.c_str(), h.get(), &mnt_id, flags), 0)
      << path << ": " << ErrnoName(errno);
  return h;
}

// The mnt_id line of /proc/self/fdinfo/FD.
int FdinfoMountId(int fd) {
  std::string info = ReadFile("/proc/self/fdinfo/" + std::to_string(fd));
  size_t at = info.find("mnt_id:");
  return at == std::string::npos ? -1 : atoi(info.c_str() + at + 7);
}

class FileHandle : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.Path("file");
    ASSERT_TRUE(WriteFile(file_, "handle data"));
  }
  TempDir dir_;
  std::string file_;
};

TEST_F(FileHandle, SizeIsAskedForThenHandleNamesTheFile) {
  // handle_bytes 0: EOVERFLOW, the size needed, and the mount id anyway.
  file_handle probe{};
  int mnt_id = -1;
  EXPECT_ERRNO(EOVERFLOW, NameToHandle(AT_FDCWD, file_.c_str(), &probe, &mnt_id, 0));
  EXPECT_GT(probe.handle_bytes, 0u);
  EXPECT_LE(probe.handle_bytes, static_cast<unsigned>(MAX_HANDLE_SZ));
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  ASSERT_OK(fd.get());
  EXPECT_EQ(mnt_id, FdinfoMountId(fd.get()));
  // Exactly that size is enough.
  std::vector<char> buf(sizeof(file_handle) + probe.handle_bytes);
  file_handle* h = reinterpret_cast<file_handle*>(buf.data());
  h->handle_bytes = probe.handle_bytes;
  ASSERT_EQ(NameToHandle(AT_FDCWD, file_.c_str(), h, &mnt_id, 0), 0) << ErrnoName(errno);
  EXPECT_EQ(h->handle_bytes, probe.handle_bytes);
  EXPECT_EQ(mnt_id, FdinfoMountId(fd.get()));
}

TEST_F(FileHandle, EveryPathToTheFileGivesTheSameHandle) {
  Handle by_path = HandleOf(file_);
  FileDescriptor dirfd(open(dir_.path().c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_OK(dirfd.get());
  Handle by_dirfd;
  int mnt_id;
  ASSERT_EQ(NameToHandle(dirfd.get(), "file", by_dirfd.get(), &mnt_id, 0), 0);
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  Handle by_fd;
  ASSERT_EQ(NameToHandle(fd.get(), "", by_fd.get(), &mnt_id, AT_EMPTY_PATH), 0);
  ASSERT_OK(link(file_.c_str(), dir_.Path("link").c_str()));
  Handle by_link = HandleOf(dir_.Path("link"));
  ASSERT_OK(symlink("file", dir_.Path("sym").c_str()));
  Handle followed = HandleOf(dir_.Path("sym"), AT_SYMLINK_FOLLOW);
  Handle symlink_itself = HandleOf(dir_.Path("sym"));
  EXPECT_EQ(by_path.Bytes(), by_dirfd.Bytes());
  EXPECT_EQ(by_path.Bytes(), by_fd.Bytes());
  EXPECT_EQ(by_path.Bytes(), by_link.Bytes());
  EXPECT_EQ(by_path.Bytes(), followed.Bytes());
  EXPECT_NE(by_path.Bytes(), symlink_itself.Bytes());
  EXPECT_EQ(by_path.get()->handle_type, followed.get()->handle_type);
}

TEST_F(FileHandle, OpensTheFileForReadingAndWriting) {
  if (!HaveCap(CAP_DAC_READ_SEARCH)) GTEST_SKIP() << "needs CAP_DAC_READ_SEARCH";
  Handle h = HandleOf(file_);
  FileDescriptor rd(OpenByHandle(AT_FDCWD, h.get(), O_RDONLY));
  ASSERT_OK(rd.get());
  char got[32] = {};
  EXPECT_EQ(read(rd.get(), got, sizeof(got)), 11);
  EXPECT_STREQ(got, "handle data");
  struct stat by_handle, by_path;
  ASSERT_OK(fstat(rd.get(), &by_handle));
  ASSERT_OK(stat(file_.c_str(), &by_path));
  EXPECT_EQ(by_handle.st_ino, by_path.st_ino);
  EXPECT_EQ(by_handle.st_dev, by_path.st_dev);
  // Any fd on the same filesystem decodes it, also the file's own.
  FileDescriptor wr(OpenByHandle(rd.get(), h.get(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  ASSERT_OK(wr.get());
  EXPECT_EQ(fcntl(wr.get(), F_GETFD), FD_CLOEXEC);
  ASSERT_EQ(write(wr.get(), "new", 3), 3);
  EXPECT_EQ(ReadFile(file_), "new");
  // A directory's handle opens the directory (and only for reading).
  Handle d = HandleOf(dir_.path());
  FileDescriptor dfd(OpenByHandle(AT_FDCWD, d.get(), O_RDONLY | O_DIRECTORY));
  ASSERT_OK(dfd.get());
  EXPECT_EQ(faccessat(dfd.get(), "file", F_OK, 0), 0);
  EXPECT_ERRNO(EISDIR, OpenByHandle(AT_FDCWD, d.get(), O_RDWR));
}

TEST_F(FileHandle, SymlinkHandleOpensOnlyAsPath) {
  if (!HaveCap(CAP_DAC_READ_SEARCH)) GTEST_SKIP() << "needs CAP_DAC_READ_SEARCH";
  ASSERT_OK(symlink("file", dir_.Path("sym").c_str()));
  Handle h = HandleOf(dir_.Path("sym"));
  EXPECT_ERRNO(ELOOP, OpenByHandle(AT_FDCWD, h.get(), O_RDONLY));
  EXPECT_ERRNO(ELOOP, OpenByHandle(AT_FDCWD, h.get(), O_RDWR));
  FileDescriptor fd(OpenByHandle(AT_FDCWD, h.get(), O_PATH));
  ASSERT_OK(fd.get());
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode)) << std::oct << st.st_mode;
}

TEST_F(FileHandle, RemovedFileIsStale) {
  if (!HaveCap(CAP_DAC_READ_SEARCH)) GTEST_SKIP() << "needs CAP_DAC_READ_SEARCH";
  Handle h = HandleOf(file_);
  ASSERT_OK(unlink(file_.c_str()));
  EXPECT_ERRNO(ESTALE, OpenByHandle(AT_FDCWD, h.get(), O_RDONLY));
  // A new file under the old name is another file.
  ASSERT_TRUE(WriteFile(file_, "other"));
  EXPECT_ERRNO(ESTALE, OpenByHandle(AT_FDCWD, h.get(), O_RDONLY));
}

TEST_F(FileHandle, NameToHandleChecks) {
  Handle h;
  int mnt_id;
  EXPECT_ERRNO(EINVAL, NameToHandle(AT_FDCWD, file_.c_str(), h.get(), &mnt_id, -1));
  EXPECT_ERRNO(EINVAL,
               NameToHandle(AT_FDCWD, file_.c_str(), h.get(), &mnt_id, AT_SYMLINK_NOFOLLOW));
  // A connectable handle is not one to skip decoding, nor of an fd's file.
  EXPECT_ERRNO(EINVAL, NameToHandle(AT_FDCWD, file_.c_str(), h.get(), &mnt_id,
                                    AT_HANDLE_CONNECTABLE | AT_HANDLE_FID));
  EXPECT_ERRNO(EINVAL, NameToHandle(AT_FDCWD, file_.c_str(), h.get(), &mnt_id,
                                    AT_HANDLE_CONNECTABLE | AT_EMPTY_PATH));
  EXPECT_ERRNO(EBADF, NameToHandle(-1, "file", h.get(), &mnt_id, 0));
  FileDescriptor fd(open(file_.c_str(), O_RDONLY));
  EXPECT_ERRNO(ENOTDIR, NameToHandle(fd.get(), "x", h.get(), &mnt_id, 0));
  EXPECT_ERRNO(ENOENT, NameToHandle(AT_FDCWD, "", h.get(), &mnt_id, 0));
  EXPECT_ERRNO(ENOENT, NameToHandle(AT_FDCWD, dir_.Path("missing").c_str(), h.get(), &mnt_id, 0));
  EXPECT_ERRNO(EFAULT,
               NameToHandle(AT_FDCWD, reinterpret_cast<const char*>(8), h.get(), &mnt_id, 0));
  EXPECT_ERRNO(
      EFAULT, NameToHandle(AT_FDCWD, file_.c_str(), reinterpret_cast<file_handle*>(8), &mnt_id, 0));
  EXPECT_ERRNO(EFAULT,
               NameToHandle(AT_FDCWD, file_.c_str(), h.get(), reinterpret_cast<int*>(8), 0));
  h.get()->handle_bytes = MAX_HANDLE_SZ + 1;
  EXPECT_ERRNO(EINVAL, NameToHandle(AT_FDCWD, file_.c_str(), h.get(), &mnt_id, 0));
  // /proc has no handles to open: only AT_HANDLE_FID ones.
  Handle p;
  EXPECT_ERRNO(EOPNOTSUPP, NameToHandle(AT_FDCWD, "/proc/self/status", p.get(), &mnt_id, 0));
  EXPECT_EQ(NameToHandle(AT_FDCWD, "/proc/self/status", p.get(), &mnt_id, AT_HANDLE_FID), 0)
      << ErrnoName(errno);
}

TEST_F(FileHandle, OpenByHandleChecks) {
  if (!HaveCap(CAP_DAC_READ_SEARCH)) GTEST_SKIP() << "needs CAP_DAC_READ_SEARCH";
  Handle h = HandleOf(file_);
  EXPECT_ERRNO(EBADF, OpenByHandle(-1, h.get(), O_RDONLY));
  EXPECT_ERRNO(EFAULT, OpenByHandle(AT_FDCWD, reinterpret_cast<file_handle*>(8), O_RDONLY));
  Handle bad = h;
  bad.get()->handle_bytes = 0;
  EXPECT_ERRNO(EINVAL, OpenByHandle(AT_FDCWD, bad.get(), O_RDONLY));
  bad.get()->handle_bytes = MAX_HANDLE_SZ + 1;
  EXPECT_ERRNO(EINVAL, OpenByHandle(AT_FDCWD, bad.get(), O_RDONLY));
  // Bytes that name nothing, and a mount fd of another filesystem (a pipe,
  // /proc): ESTALE.
  bad = h;
  for (unsigned i = 0; i < bad.get()->handle_bytes; ++i) bad.get()->f_handle[i] ^= 0x5a;
  EXPECT_ERRNO(ESTALE, OpenByHandle(AT_FDCWD, bad.get(), O_RDONLY));
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_ERRNO(ESTALE, OpenByHandle(r.get(), h.get(), O_RDONLY));
  FileDescriptor proc(open("/proc", O_RDONLY | O_DIRECTORY));
  ASSERT_OK(proc.get());
  EXPECT_ERRNO(ESTALE, OpenByHandle(proc.get(), h.get(), O_RDONLY));
}

// Without CAP_DAC_READ_SEARCH a handle opens no file (EPERM).
TEST_F(FileHandle, OpenNeedsCapDacReadSearch) {
  if (!HaveCap(CAP_DAC_READ_SEARCH)) GTEST_SKIP() << "needs CAP_DAC_READ_SEARCH";
  Handle h = HandleOf(file_);
  int status = RunInChild([&] {
    if (!DropEffective(CAP_DAC_READ_SEARCH)) return 1;
    if (OpenByHandle(AT_FDCWD, h.get(), O_RDONLY) != -1 || errno != EPERM) return 2;
    if (OpenByHandle(AT_FDCWD, h.get(), O_RDWR) != -1 || errno != EPERM) return 3;
    // Naming needs no capability.
    Handle again;
    int mnt_id;
    if (NameToHandle(AT_FDCWD, file_.c_str(), again.get(), &mnt_id, 0) != 0) return 4;
    return again.Bytes() == h.Bytes() ? 0 : 5;
  });
  EXPECT_EXIT_CODE(status, 0);
}

}  // namespace
}  // namespace syscall_test
