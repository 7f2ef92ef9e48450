// The dentry cache against changes that race with lookups, made to happen
// in one order by a directory whose operations call back in the middle:
// a lookup overtaken by an unlink must not cache the removed file, and a
// create must not drop the dentry a racing lookup cached for the new object.
#include <sys/stat.h>

#include <functional>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "sentry/fs/tmpfs/tmpfs.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {
namespace {

// A tmpfs directory whose Lookup and Mkdir run a hook once after the real
// operation, before returning: what another thread would do there.
class HookedDir : public Inode {
 public:
  explicit HookedDir(std::shared_ptr<TmpfsInode> inner) : inner_(std::move(inner)) {}

  std::function<void(std::string_view)> after_lookup, after_mkdir;

  Result<struct stat> Stat() override { return inner_->Stat(); }
  Result<std::shared_ptr<Inode>> Lookup(std::string_view name) override {
    auto r = inner_->Lookup(name);
    RunOnce(after_lookup, name);
    return r;
  }
  Result<std::vector<DirEntry>> ReadDir() override { return inner_->ReadDir(); }
  Result<std::shared_ptr<Inode>> Create(std::string_view name, mode_t mode,
                                        const FsCreds& c) override {
    return inner_->Create(name, mode, c);
  }
  Status Mkdir(std::string_view name, mode_t mode, const FsCreds& c) override {
    SV_TRY(inner_->Mkdir(name, mode, c));
    RunOnce(after_mkdir, name);
    return {};
  }
  Status Unlink(std::string_view name) override { return inner_->Unlink(name); }
  Status Rmdir(std::string_view name) override { return inner_->Rmdir(name); }
  const void* FsId() const override { return inner_->FsId(); }

 private:
  static void RunOnce(std::function<void(std::string_view)>& hook, std::string_view name) {
    auto h = std::move(hook);
    hook = nullptr;
    if (h) h(name);
  }

  std::shared_ptr<TmpfsInode> inner_;
};

class DentryRaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto vfs = Vfs::CreateWithoutKernel({.host_root = "/"});
    ASSERT_TRUE(vfs.ok()) << vfs.status();
    vfs_ = std::move(*vfs);
    ctx_ = ResolveContext{vfs_->root(), vfs_->root(), FsCreds{}, 022};
    ASSERT_TRUE(vfs_->Mkdir(ctx_, "/hooked", 0755).ok());
    dir_ = std::make_shared<HookedDir>(NewTmpfs(0755));
    auto mount = std::make_shared<Mount>("tmpfs", "none", "rw", dir_);
    ASSERT_TRUE(vfs_->MountAt("/hooked", std::move(mount)).ok());
    auto d = vfs_->Resolve(ctx_, "/hooked", true);
    ASSERT_TRUE(d.ok());
    hooked_ = *d;
  }

  int ErrOf(const Result<DentryRef>& r) { return r.ok() ? 0 : r.error().value(); }

  std::unique_ptr<Vfs> vfs_;
  ResolveContext ctx_;
  std::shared_ptr<HookedDir> dir_;
  DentryRef hooked_;
};

// A lookup that found the file, overtaken by its unlink before it cached
// what it found: the name is gone for every later lookup.
TEST_F(DentryRaceTest, ALookupOvertakenByAnUnlinkCachesNothing) {
  ASSERT_TRUE(vfs_->Open(ctx_, "/hooked/f", O_CREAT | O_WRONLY, 0644).ok());
  hooked_->Forget("f");  // as after a while: the next lookup asks the directory
  dir_->after_lookup = [&](std::string_view) {
    ASSERT_TRUE(vfs_->Unlink(ctx_, "/hooked/f").ok());
  };
  // Either answer is right for this lookup; its dentry, if any, is held
  // (as its user holds it, or the overlay's dentry cache keeps it).
  auto raced = hooked_->Child("f");
  EXPECT_EQ(ErrOf(hooked_->Child("f")), ENOENT);
  EXPECT_EQ(ErrOf(vfs_->Resolve(ctx_, "/hooked/f", true)), ENOENT);
}

// A lookup between mkdir's create and its end caches the new directory's
// dentry: mkdir keeps it, so its holder and later lookups share one dentry
// (and one cache of its children).
TEST_F(DentryRaceTest, MkdirKeepsTheDentryARacingLookupCached) {
  DentryRef racer;
  dir_->after_mkdir = [&](std::string_view name) {
    auto d = hooked_->Child(name);
    ASSERT_TRUE(d.ok());
    racer = *d;
  };
  ASSERT_TRUE(vfs_->Mkdir(ctx_, "/hooked/d", 0755).ok());
  ASSERT_NE(racer, nullptr);
  auto later = vfs_->Resolve(ctx_, "/hooked/d", true);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(later->get(), racer.get());
  // What the racer's holder sees below it follows changes made by path.
  ResolveContext in_racer = ctx_;
  in_racer.start = racer;
  ASSERT_TRUE(vfs_->Open(in_racer, "sub", O_CREAT | O_WRONLY, 0644).ok());
  ASSERT_TRUE(vfs_->Unlink(ctx_, "/hooked/d/sub").ok());
  EXPECT_EQ(ErrOf(vfs_->Resolve(in_racer, "sub", true)), ENOENT);
}

}  // namespace
}  // namespace seedvisor::sentry
