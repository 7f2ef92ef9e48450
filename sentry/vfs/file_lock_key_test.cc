// FileDescription::LockKey: asked of the inode once per description (a
// close while locks exist asks it; for host files that is a host fstatat).
#include <sys/stat.h>

#include <memory>

#include "gtest/gtest.h"
#include "sentry/vfs/file.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {
namespace {

class CountingInode : public Inode {
 public:
  explicit CountingInode(bool stat_fails) : stat_fails_(stat_fails) {}
  Result<struct stat> Stat() override {
    if (stat_fails_) return Errno(EIO);
    struct stat st {};
    st.st_mode = S_IFREG | 0644;
    st.st_dev = 7;
    st.st_ino = 42;
    return st;
  }
  FileLockKey LockKey() override {
    ++asked;
    return Inode::LockKey();
  }
  int asked = 0;

 private:
  const bool stat_fails_;
};

TEST(FileLockKeyTest, AskedOncePerDescription) {
  auto inode = std::make_shared<CountingInode>(false);
  auto d = std::make_shared<Dentry>("f", nullptr, inode, nullptr);
  FileDescription f(O_RDONLY, d);
  const FileLockKey first = f.LockKey();
  EXPECT_EQ(first.dev, 7u);
  EXPECT_EQ(first.ino, 42u);
  EXPECT_EQ(f.LockKey(), first);
  EXPECT_EQ(f.LockKey(), first);
  EXPECT_EQ(inode->asked, 1);
  FileDescription other(O_RDWR, d);
  EXPECT_EQ(other.LockKey(), first);  // one file, one key
}

TEST(FileLockKeyTest, AFailedStatIsAskedAgain) {
  auto inode = std::make_shared<CountingInode>(true);
  auto d = std::make_shared<Dentry>("f", nullptr, inode, nullptr);
  FileDescription f(O_RDONLY, d);
  (void)f.LockKey();
  (void)f.LockKey();
  EXPECT_EQ(inode->asked, 2);
}

TEST(FileLockKeyTest, ADescriptionWithoutADentryIsItsOwnFile) {
  FileDescription a(O_RDONLY), b(O_RDONLY);
  EXPECT_EQ(a.LockKey(), a.LockKey());
  EXPECT_NE(a.LockKey(), b.LockKey());
}

}  // namespace
}  // namespace seedvisor::sentry
