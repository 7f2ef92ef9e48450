// Copy-up (copy_up.cc) of host files, and the host pseudo file systems the
// lower layer does not enter (host.h).
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "sentry/fs/host/host.h"
#include "sentry/fs/overlay/overlay.h"
#include "sentry/fs/tmpfs/tmpfs.h"

namespace seedvisor::sentry {
namespace {

class CopyUpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = getenv("TEST_TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/copy-up-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    InstallTaskHooks(TaskHooks{});
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }
  // A host file of `size` bytes (a hole) holding `data` at `at`.
  void MakeSparse(const std::string& name, off_t size, const std::string& data, off_t at) {
    int fd = open((dir_ + "/" + name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(ftruncate(fd, size), 0);
    ASSERT_EQ(pwrite(fd, data.data(), data.size(), at), static_cast<ssize_t>(data.size()));
    close(fd);
  }
  std::shared_ptr<OverlayInode> Child(const std::string& name) {
    auto host = NewHostFs(dir_);
    EXPECT_TRUE(host.ok());
    root_ = NewOverlay(NewTmpfs(0755), *host);
    auto c = root_->Lookup(name);
    EXPECT_TRUE(c.ok());
    return c.ok() ? std::static_pointer_cast<OverlayInode>(*c) : nullptr;
  }

  std::string dir_;
  std::shared_ptr<OverlayInode> root_;
};

TEST_F(CopyUpTest, SparseHostFileCopiesUpSparseWithItsData) {
  constexpr off_t kSize = off_t{256} << 20;
  MakeSparse("f", kSize, "data", kSize / 2);
  auto f = Child("f");
  ASSERT_NE(f, nullptr);
  SetAttrRequest r;
  r.mode = 0600;
  ASSERT_TRUE(f->SetAttr(r).ok());
  ASSERT_NE(f->upper(), nullptr);
  auto st = f->upper()->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_size, kSize);
  EXPECT_LT(st->st_blocks, 2048) << "the hole was copied as zeros";
  char buf[4];
  EXPECT_EQ(pread(f->upper()->memfd(), buf, 4, kSize / 2), 4);
  EXPECT_EQ(std::string(buf, 4), "data");
}

TEST_F(CopyUpTest, KilledTaskEndsTheCopyWithEintrAndLeavesNoCopy) {
  MakeSparse("f", 1 << 20, "x", 0);
  auto f = Child("f");
  ASSERT_NE(f, nullptr);
  TaskHooks h;
  h.current_task_killed = [] { return true; };
  InstallTaskHooks(h);
  SetAttrRequest r;
  r.mode = 0600;
  Status s = f->SetAttr(r);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error(), Errno(EINTR));
  EXPECT_EQ(f->upper(), nullptr);
  InstallTaskHooks(TaskHooks{});
  auto again = root_->Lookup("f");  // no half copy in the upper layer
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(std::static_pointer_cast<OverlayInode>(*again)->upper(), nullptr);
  EXPECT_TRUE(f->SetAttr(r).ok());  // and the next try copies it
}

TEST(HostPseudoFsTest, KnowsTheKernelViews) {
  EXPECT_TRUE(IsHostPseudoFs(PROC_SUPER_MAGIC));
  EXPECT_TRUE(IsHostPseudoFs(SYSFS_MAGIC));
  EXPECT_TRUE(IsHostPseudoFs(TRACEFS_MAGIC));
  EXPECT_TRUE(IsHostPseudoFs(static_cast<long>(CGROUP2_SUPER_MAGIC)));
  EXPECT_FALSE(IsHostPseudoFs(TMPFS_MAGIC));
  EXPECT_FALSE(IsHostPseudoFs(EXT4_SUPER_MAGIC));
  EXPECT_FALSE(IsHostPseudoFs(static_cast<long>(OVERLAYFS_SUPER_MAGIC)));
}

TEST(HostPseudoFsTest, HostProcBelowTheRootShowsEmpty) {
  struct stat root, proc;
  if (stat("/", &root) != 0 || stat("/proc/self", &proc) != 0 || root.st_dev == proc.st_dev) {
    GTEST_SKIP() << "no proc mounted on /proc here";
  }
  auto host = NewHostFs("/");
  ASSERT_TRUE(host.ok());
  auto p = (*host)->Lookup("proc");
  ASSERT_TRUE(p.ok());
  auto entries = (*p)->ReadDir();
  ASSERT_TRUE(entries.ok());
  EXPECT_TRUE(entries->empty());
  EXPECT_EQ((*p)->Lookup("self").error(), Errno(ENOENT));
  EXPECT_EQ((*p)->Lookup("1").error(), Errno(ENOENT));
  // A pseudo file system given as the root is shown as it is.
  auto given = NewHostFs("/proc");
  ASSERT_TRUE(given.ok());
  EXPECT_TRUE((*given)->Lookup("self").ok());
}

}  // namespace
}  // namespace seedvisor::sentry
