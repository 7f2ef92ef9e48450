// open(2)'s O_TMPFILE: an unnamed regular file in a directory's filesystem
// (vfs_tmpfile()), which linkat(2) may name later unless it was opened
// O_EXCL (I_LINKABLE): through /proc/self/fd/N with AT_SYMLINK_FOLLOW, or
// the fd itself with AT_EMPTY_PATH (CAP_DAC_READ_SEARCH). Each such case
// runs in $TEST_TMPDIR (the sandbox's overlay) and in $TEST_HOST_VOLUME (in
// the sandbox a writable bind of a host directory: the host makes the file).
#include <dirent.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

std::string FdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

int Entries(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

std::string ReadAll(int fd) {
  char buf[64];
  ssize_t n = pread(fd, buf, sizeof(buf), 0);
  return n < 0 ? "<error>" : std::string(buf, n);
}

void ExpectAnUnnamedFile(const std::string& dir) {
  const int before = Entries(dir);
  const mode_t old_umask = umask(022);
  FileDescriptor fd(open(dir.c_str(), O_TMPFILE | O_RDWR, 0666));
  umask(old_umask);
  ASSERT_OK(fd.get());
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(st.st_size, 0);
  struct stat dst;
  ASSERT_OK(stat(dir.c_str(), &dst));
  EXPECT_EQ(st.st_dev, dst.st_dev);  // the directory's filesystem
  ASSERT_EQ(write(fd.get(), "data", 4), 4);
  EXPECT_EQ(ReadAll(fd.get()), "data");
  EXPECT_EQ(Entries(dir), before);  // no name anywhere
  char link[4096];
  ssize_t n = readlink(FdPath(fd.get()).c_str(), link, sizeof(link) - 1);
  ASSERT_GT(n, 0) << ErrnoName(errno);
  const std::string shown(link, n);
  EXPECT_EQ(shown.rfind(dir + "/#", 0), 0u) << shown;
  EXPECT_NE(shown.find(" (deleted)"), std::string::npos) << shown;
  // F_GETFL shows the access mode it was opened with.
  EXPECT_EQ(fcntl(fd.get(), F_GETFL) & O_ACCMODE, O_RDWR);
}

// A fresh directory in $TEST_TMPDIR ("tmpdir") or in $TEST_HOST_VOLUME
// ("volume"), removed after the case.
class TmpfileIn : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const char* parent = getenv(GetParam() == "volume" ? "TEST_HOST_VOLUME" : "TEST_TMPDIR");
    // The BUILD target always gives one (run_test.sh --host-volume).
    ASSERT_NE(parent, nullptr) << "no " << GetParam() << " directory in the environment";
    std::string tmpl = std::string(parent) + "/tmpfile.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << tmpl << ": " << ErrnoName(errno);
    path_ = tmpl;
  }
  void TearDown() override {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

INSTANTIATE_TEST_SUITE_P(Dirs, TmpfileIn, testing::Values("tmpdir", "volume"),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

TEST_P(TmpfileIn, AnUnnamedFileInTheDirectorysFilesystem) { ExpectAnUnnamedFile(path()); }

TEST(TmpfileTest, OnTmpfs) {
  struct stat st;
  if (stat("/dev/shm", &st) != 0) GTEST_SKIP() << "no /dev/shm";
  ExpectAnUnnamedFile("/dev/shm");
}

TEST(TmpfileTest, FlagsAndPathErrors) {
  TempDir dir;
  const char* d = dir.path().c_str();
  // build_open_flags(): O_TMPFILE needs O_DIRECTORY, no O_CREAT, and write.
  EXPECT_ERRNO(EINVAL, open(d, O_TMPFILE | O_RDONLY, 0600));
  EXPECT_ERRNO(EINVAL, open(d, (O_TMPFILE & ~O_DIRECTORY) | O_RDWR, 0600));
  EXPECT_ERRNO(EINVAL, open(d, O_TMPFILE | O_CREAT | O_RDWR, 0600));
  EXPECT_ERRNO(EINVAL, open("/nonexistent", O_TMPFILE | O_RDONLY, 0600));  // flags first
  EXPECT_ERRNO(ENOENT, open(dir.Path("missing").c_str(), O_TMPFILE | O_RDWR, 0600));
  ASSERT_TRUE(WriteFile(dir.Path("file"), "x"));
  EXPECT_ERRNO(ENOTDIR, open(dir.Path("file").c_str(), O_TMPFILE | O_RDWR, 0600));
  // A filesystem without tmpfile support.
  EXPECT_ERRNO(EOPNOTSUPP, open("/proc", O_TMPFILE | O_RDWR, 0600));
  // O_PATH beats everything else (build_open_how()): an O_PATH directory.
  FileDescriptor p(open(d, O_PATH | O_TMPFILE | O_RDWR, 0600));
  ASSERT_OK(p.get());
  struct stat st;
  ASSERT_OK(fstat(p.get(), &st));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  // The directory must be writable (vfs_tmpfile()'s MAY_WRITE | MAY_EXEC).
  ASSERT_OK(chmod(d, 0555));
  const std::string path = dir.path();
  int status = RunAsNobody([&] {
    int fd = open(path.c_str(), O_TMPFILE | O_RDWR, 0600);
    if (fd >= 0) return 1;
    return errno == EACCES ? 0 : 2;
  });
  EXPECT_EQ(status, 0);
  ASSERT_OK(chmod(d, 0755));
}

TEST_P(TmpfileIn, LinkedThroughProcSelfFd) {
  FileDescriptor fd(open(path().c_str(), O_TMPFILE | O_RDWR, 0600));
  ASSERT_OK(fd.get());
  ASSERT_EQ(write(fd.get(), "kept", 4), 4);
  const std::string name = Path("named");
  // Without AT_SYMLINK_FOLLOW the link itself would be linked: the magic
  // link is a /proc object (EXDEV).
  EXPECT_ERRNO(EXDEV, linkat(AT_FDCWD, FdPath(fd.get()).c_str(), AT_FDCWD, name.c_str(), 0));
  ASSERT_OK(linkat(AT_FDCWD, FdPath(fd.get()).c_str(), AT_FDCWD, name.c_str(),
                   AT_SYMLINK_FOLLOW));
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(ReadFile(name), "kept");
  struct stat named;
  ASSERT_OK(stat(name.c_str(), &named));
  EXPECT_EQ(named.st_ino, st.st_ino);
  // Named now, it links as any file does.
  ASSERT_OK(linkat(AT_FDCWD, FdPath(fd.get()).c_str(), AT_FDCWD, Path("second").c_str(),
                   AT_SYMLINK_FOLLOW));
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 2u);
  // Once it has lost its names again it is an unlinked file: no new name
  // (I_LINKABLE went with the first link).
  ASSERT_OK(unlink(name.c_str()));
  ASSERT_OK(unlink(Path("second").c_str()));
  EXPECT_ERRNO(ENOENT, linkat(AT_FDCWD, FdPath(fd.get()).c_str(), AT_FDCWD,
                              Path("third").c_str(), AT_SYMLINK_FOLLOW));
}

TEST_P(TmpfileIn, LinkedWithAtEmptyPath) {
  FileDescriptor fd(open(path().c_str(), O_TMPFILE | O_WRONLY, 0600));
  ASSERT_OK(fd.get());
  ASSERT_EQ(write(fd.get(), "flink", 5), 5);
  if (!HaveCap(CAP_DAC_READ_SEARCH)) GTEST_SKIP() << "needs CAP_DAC_READ_SEARCH";
  const std::string name = Path("named");
  ASSERT_OK(linkat(fd.get(), "", AT_FDCWD, name.c_str(), AT_EMPTY_PATH));
  EXPECT_EQ(ReadFile(name), "flink");
  // An empty path without AT_EMPTY_PATH names nothing.
  EXPECT_ERRNO(ENOENT, linkat(fd.get(), "", AT_FDCWD, Path("x").c_str(), 0));
}

TEST_P(TmpfileIn, AtEmptyPathNeedsCapDacReadSearch) {
  FileDescriptor fd(open(path().c_str(), O_TMPFILE | O_RDWR, 0600));
  ASSERT_OK(fd.get());
  ASSERT_TRUE(WriteFile(Path("plain"), "p"));
  FileDescriptor plain(open(Path("plain").c_str(), O_RDONLY));
  ASSERT_OK(plain.get());
  const std::string a = Path("a"), b = Path("b");
  const int tmp_fd = fd.get(), plain_fd = plain.get();
  int status = RunInChild([&] {
    if (!DropEffective(CAP_DAC_READ_SEARCH)) return 1;
    // Any fd's object: an O_TMPFILE file or a named one.
    if (linkat(tmp_fd, "", AT_FDCWD, a.c_str(), AT_EMPTY_PATH) == 0) return 2;
    if (errno != ENOENT) return 3;
    if (linkat(plain_fd, "", AT_FDCWD, b.c_str(), AT_EMPTY_PATH) == 0) return 4;
    if (errno != ENOENT) return 5;
    // /proc/self/fd/N with AT_SYMLINK_FOLLOW needs no capability.
    if (linkat(AT_FDCWD, FdPath(tmp_fd).c_str(), AT_FDCWD, a.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      return 6;
    }
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST_P(TmpfileIn, OExclFilesStayUnnamed) {
  FileDescriptor fd(open(path().c_str(), O_TMPFILE | O_EXCL | O_RDWR, 0600));
  ASSERT_OK(fd.get());
  EXPECT_ERRNO(ENOENT, linkat(AT_FDCWD, FdPath(fd.get()).c_str(), AT_FDCWD,
                              Path("a").c_str(), AT_SYMLINK_FOLLOW));
  if (HaveCap(CAP_DAC_READ_SEARCH)) {
    EXPECT_ERRNO(ENOENT, linkat(fd.get(), "", AT_FDCWD, Path("b").c_str(), AT_EMPTY_PATH));
  }
  // And an ordinary file whose last name went is no O_TMPFILE file.
  ASSERT_TRUE(WriteFile(Path("gone"), "g"));
  FileDescriptor gone(open(Path("gone").c_str(), O_RDONLY));
  ASSERT_OK(gone.get());
  ASSERT_OK(unlink(Path("gone").c_str()));
  EXPECT_ERRNO(ENOENT, linkat(AT_FDCWD, FdPath(gone.get()).c_str(), AT_FDCWD,
                              Path("c").c_str(), AT_SYMLINK_FOLLOW));
  if (HaveCap(CAP_DAC_READ_SEARCH)) {
    EXPECT_ERRNO(ENOENT, linkat(gone.get(), "", AT_FDCWD, Path("d").c_str(), AT_EMPTY_PATH));
  }
}

}  // namespace
}  // namespace syscall_test
