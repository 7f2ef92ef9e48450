// (st_dev, st_ino) of objects on other file systems than the root's: two
// objects never show the same pair, one object always shows one.
//
// run_test.sh --host-tmpfs=2 mounts two fresh tmpfs instances on the host
// (so in the sandbox's lower layer) at $TEST_TMPDIR/host_tmpfs/{0,1}, each
// holding a file `f` and a directory `d`: their inode numbers repeat
// between the two, and a tmpfs root's may equal an ext4 file's. tar, cp -a,
// find -samefile and git take two objects with one (st_dev, st_ino) for one.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

using Id = std::pair<dev_t, ino_t>;

std::string Mounts() {
  const char* t = getenv("TEST_TMPDIR");
  return std::string(t != nullptr ? t : "/tmp") + "/host_tmpfs";
}

std::string In(int fs, const std::string& name = "") {
  return Mounts() + "/" + std::to_string(fs) + (name.empty() ? "" : "/" + name);
}

// stat(2)'s pair, or {0, 0} with a test failure.
Id IdOf(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    ADD_FAILURE() << "lstat " << path << ": " << ErrnoName(errno);
    return {0, 0};
  }
  return {st.st_dev, st.st_ino};
}

// The names and d_ino of the entries of `dir` (getdents64).
std::map<std::string, ino_t> Entries(const std::string& dir) {
  std::map<std::string, ino_t> out;
  FileDescriptor fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY));
  if (fd.get() < 0) {
    ADD_FAILURE() << "open " << dir << ": " << ErrnoName(errno);
    return out;
  }
  alignas(8) char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, fd.get(), buf, sizeof(buf));
    if (n < 0) ADD_FAILURE() << "getdents64 " << dir << ": " << ErrnoName(errno);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf + off);
      out[d->d_name] = d->d_ino;
      off += d->d_reclen;
    }
  }
  return out;
}

class StatXdevTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The runner's mounts are there (else the test says nothing).
    ASSERT_EQ(ReadFile(In(0, "f")), "0\n") << "run with run_test.sh --host-tmpfs=2";
    ASSERT_EQ(ReadFile(In(1, "f")), "1\n") << "run with run_test.sh --host-tmpfs=2";
  }
};

TEST_F(StatXdevTest, DistinctObjectsShowDistinctIds) {
  const std::vector<std::string> paths = {
      "/", Mounts(), In(0), In(1), In(0, "f"), In(1, "f"), In(0, "d"), In(1, "d"),
  };
  std::map<Id, std::string> seen;
  for (const auto& p : paths) {
    auto [it, added] = seen.emplace(IdOf(p), p);
    EXPECT_TRUE(added) << p << " shows the (st_dev, st_ino) of " << it->second;
  }
}

TEST_F(StatXdevTest, OneObjectShowsOneIdWhateverTheWay) {
  for (const std::string& p : {In(0), In(0, "f"), In(0, "d")}) {
    SCOPED_TRACE(p);
    const Id id = IdOf(p);
    EXPECT_EQ(IdOf(p), id);  // and again
    struct stat st;
    FileDescriptor fd(open(p.c_str(), O_RDONLY));
    ASSERT_OK(fd.get());
    ASSERT_OK(fstat(fd.get(), &st));
    EXPECT_EQ(Id(st.st_dev, st.st_ino), id);
    FileDescriptor path_fd(open(p.c_str(), O_PATH));
    ASSERT_OK(path_fd.get());
    ASSERT_OK(fstat(path_fd.get(), &st));
    EXPECT_EQ(Id(st.st_dev, st.st_ino), id);
    struct statx stx = {};
    ASSERT_OK(syscall(SYS_statx, AT_FDCWD, p.c_str(), AT_SYMLINK_NOFOLLOW, STATX_INO, &stx));
    EXPECT_EQ(stx.stx_ino, id.second);
    EXPECT_EQ(makedev(stx.stx_dev_major, stx.stx_dev_minor), id.first);
  }
  EXPECT_EQ(IdOf(In(0, "d/..")), IdOf(In(0)));
  // getdents64's d_ino is st_ino (entries that are no mount point).
  auto entries = Entries(In(0));
  EXPECT_EQ(entries["f"], IdOf(In(0, "f")).second);
  EXPECT_EQ(entries["d"], IdOf(In(0, "d")).second);
}

// Changing an object (in the sandbox: copying it up to the writable layer),
// linking and renaming it keep its ids, and keep them apart from the other
// file system's.
TEST_F(StatXdevTest, ChangesLinksAndRenamesKeepTheIds) {
  const Id file = IdOf(In(1, "f"));
  const Id dir = IdOf(In(1, "d"));
  const Id other = IdOf(In(0, "f"));
  ASSERT_NE(file, other);

  FileDescriptor fd(open(In(1, "f").c_str(), O_WRONLY | O_APPEND));
  ASSERT_OK(fd.get());
  ASSERT_EQ(write(fd.get(), "x", 1), 1);
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(Id(st.st_dev, st.st_ino), file);
  EXPECT_EQ(IdOf(In(1, "f")), file);

  ASSERT_OK(chmod(In(1, "d").c_str(), 0700));
  EXPECT_EQ(IdOf(In(1, "d")), dir);

  ASSERT_OK(link(In(1, "f").c_str(), In(1, "g").c_str()));
  EXPECT_EQ(IdOf(In(1, "g")), file);
  ASSERT_OK(rename(In(1, "g").c_str(), In(1, "d/h").c_str()));
  EXPECT_EQ(IdOf(In(1, "d/h")), file);
  EXPECT_EQ(Entries(In(1, "d"))["h"], file.second);
  EXPECT_EQ(Entries(In(1))["f"], file.second);
  EXPECT_NE(IdOf(In(1, "d/h")), other);
  EXPECT_EQ(IdOf(In(0, "f")), other);
  ASSERT_OK(unlink(In(1, "d/h").c_str()));
}

}  // namespace
}  // namespace syscall_test
