// Path resolution, the host passthrough's confinement, the overlay and tmpfs,
// tested through the Vfs with a temporary directory as the host root.
#include "sentry/vfs/vfs.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "sentry/fs/host/host.h"
#include "sentry/fs/overlay/overlay.h"
#include "sentry/fs/tmpfs/tmpfs.h"

namespace seedvisor::sentry {
namespace {

std::string ReadHost(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteHost(const std::string& path, const std::string& data) {
  std::ofstream out(path);
  out << data;
}

class VfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vfs_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ASSERT_EQ(chmod(tmpl, 0755), 0);  // mkdtemp makes it 0700
    ASSERT_EQ(mkdir((root_ + "/etc").c_str(), 0755), 0);
    WriteHost(root_ + "/etc/marker", "inside");
    WriteHost(root_ + "/data", "original");
    ASSERT_EQ(mkdir((root_ + "/dir").c_str(), 0755), 0);
    WriteHost(root_ + "/dir/a", "A");
    WriteHost(root_ + "/dir/b", "B");
    ASSERT_EQ(chmod((root_ + "/data").c_str(), 0644), 0);
    WriteHost(root_ + "/secret", "s");
    ASSERT_EQ(chmod((root_ + "/secret").c_str(), 0600), 0);
    ASSERT_EQ(symlink("/etc", (root_ + "/etc_link").c_str()), 0);
    ASSERT_EQ(symlink("../../../../../../etc/passwd", (root_ + "/up_link").c_str()), 0);
    ASSERT_EQ(symlink("loop2", (root_ + "/loop1").c_str()), 0);
    ASSERT_EQ(symlink("loop1", (root_ + "/loop2").c_str()), 0);
    auto vfs = Vfs::CreateWithoutKernel({.host_root = root_});
    ASSERT_TRUE(vfs.ok()) << vfs.status();
    vfs_ = std::move(*vfs);
    ctx_ = ResolveContext{vfs_->root(), vfs_->root(), FsCreds{}, 022};
  }

  void TearDown() override {
    std::string cmd = "rm -rf " + root_;
    ASSERT_EQ(system(cmd.c_str()), 0);
  }

  Result<DentryRef> Resolve(const std::string& p, bool follow = true) {
    return vfs_->Resolve(ctx_, p, follow);
  }

  int ErrOf(Result<DentryRef> r) { return r.ok() ? 0 : r.error().value(); }
  int ErrOf(Status s) { return s.ok() ? 0 : s.error().value(); }
  int ErrOf(Result<FileRef> r) { return r.ok() ? 0 : r.error().value(); }

  // Reads a whole regular file through the Vfs, without a task.
  std::string ReadVfs(const std::string& p) {
    auto f = vfs_->Open(ctx_, p, O_RDONLY, 0);
    if (!f.ok()) return "<errno " + std::to_string(f.error().value()) + ">";
    auto fd = (*f)->MappableFd();
    if (!fd.ok()) return "<unmappable>";
    std::string out(4096, '\0');
    ssize_t n = pread(*fd, out.data(), out.size(), 0);
    out.resize(n < 0 ? 0 : n);
    return out;
  }

  std::vector<std::string> List(const std::string& p) {
    std::vector<std::string> names;
    auto d = Resolve(p);
    if (!d.ok()) return names;
    auto entries = (*d)->inode()->ReadDir();
    if (!entries.ok()) return names;
    for (auto& e : *entries) names.push_back(e.name);
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string root_;
  std::unique_ptr<Vfs> vfs_;
  ResolveContext ctx_;
};

TEST_F(VfsTest, AbsoluteSymlinkResolvesInsideTheRoot) {
  EXPECT_EQ(ReadVfs("/etc_link/marker"), "inside");
  // The host's /etc/passwd exists, but the sandbox's /etc is root_/etc.
  EXPECT_EQ(ErrOf(Resolve("/etc_link/passwd")), ENOENT);
  EXPECT_EQ(ErrOf(Resolve("/up_link")), ENOENT);
}

TEST_F(VfsTest, DotDotStaysAtRoot) {
  EXPECT_EQ(ReadVfs("/../../../etc/marker"), "inside");
  auto d = Resolve("/../..");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, vfs_->root());
  EXPECT_EQ(ReadVfs("/dir/../../../data"), "original");
}

TEST_F(VfsTest, SymlinkLoopIsEloop) {
  EXPECT_EQ(ErrOf(Resolve("/loop1")), ELOOP);
  // Without following the last component, the link itself resolves.
  EXPECT_EQ(ErrOf(Resolve("/loop1", false)), 0);
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/etc_link", O_RDONLY | O_NOFOLLOW, 0)), ELOOP);
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/etc_link", O_PATH | O_NOFOLLOW, 0)), 0);
}

TEST_F(VfsTest, TrailingSlashAndNotDir) {
  EXPECT_EQ(ErrOf(Resolve("/data/")), ENOTDIR);
  EXPECT_EQ(ErrOf(Resolve("/data/x")), ENOTDIR);
  EXPECT_EQ(ErrOf(Resolve("/dir/")), 0);
  EXPECT_EQ(ErrOf(Resolve("/etc_link/")), 0);  // a trailing slash follows the link
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/data", O_RDONLY | O_DIRECTORY, 0)), ENOTDIR);
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/dir", O_WRONLY, 0)), EISDIR);
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/newfile/", O_CREAT | O_WRONLY, 0644)), EISDIR);
  EXPECT_EQ(ErrOf(vfs_->Unlink(ctx_, "/data/")), ENOTDIR);
}

TEST_F(VfsTest, NameTooLong) {
  std::string longname(256, 'x');
  EXPECT_EQ(ErrOf(Resolve("/" + longname)), ENAMETOOLONG);
  std::string longpath;
  while (longpath.size() < 4100) longpath += "/dir";
  EXPECT_EQ(ErrOf(Resolve(longpath)), ENAMETOOLONG);
  EXPECT_EQ(ErrOf(Resolve("")), ENOENT);
}

TEST_F(VfsTest, CreateExclusive) {
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/data", O_CREAT | O_EXCL | O_WRONLY, 0644)), EEXIST);
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/newfile", O_CREAT | O_EXCL | O_WRONLY, 0666)), 0);
  auto d = Resolve("/newfile");
  ASSERT_TRUE(d.ok());
  auto st = (*d)->inode()->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->st_mode & 0777, 0644u);  // umask 022
  EXPECT_FALSE(access((root_ + "/newfile").c_str(), F_OK) == 0);  // never on the host
}

// O_CREAT opens of one new name at once all open the one file the first
// of them created (none is EEXIST: that is O_EXCL's), through one dentry,
// so one Inode object (issue 17: SQLite's processes open "db-shm" so).
TEST_F(VfsTest, RacingCreatesOpenOneFile) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 300;
  std::barrier start(kThreads);
  std::vector<std::vector<FileRef>> files(kRounds, std::vector<FileRef>(kThreads));
  std::atomic<int> errors{0}, last_errno{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        start.arrive_and_wait();
        auto f = vfs_->Open(ctx_, "/race" + std::to_string(r), O_CREAT | O_RDWR, 0644);
        if (f.ok()) {
          files[r][t] = *f;
        } else {
          errors++;
          last_errno = f.error().value();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0) << "last errno " << last_errno.load();
  int split = 0;
  for (auto& round : files) {
    for (auto& f : round) {
      if (f && round[0] && f->dentry() != round[0]->dentry()) {
        split++;
        break;
      }
    }
  }
  EXPECT_EQ(split, 0) << "rounds of " << kRounds << " whose opens got two dentries";
}

// Advisory locks are per file: every Inode object that stands for one
// file has its LockKey. The overlay makes one per lookup: after a rename,
// through a second link, and for a copied-up lower file looked up again.
TEST_F(VfsTest, OneFileHasOneLockKeyWhateverTheLookup) {
  auto key = [&](const std::string& p) {
    auto d = Resolve(p);
    EXPECT_TRUE(d.ok()) << p;
    return d.ok() ? (*d)->inode()->LockKey() : FileLockKey{};
  };
  auto made = vfs_->Open(ctx_, "/new", O_CREAT | O_RDWR, 0644);
  ASSERT_TRUE(made.ok());
  const FileLockKey upper_only = (*made)->dentry()->inode()->LockKey();
  ASSERT_EQ(ErrOf(vfs_->Rename(ctx_, "/new", ctx_, "/moved", 0)), 0);
  auto moved = Resolve("/moved");
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ((*moved)->inode()->LockKey(), upper_only);
  ASSERT_EQ(ErrOf(vfs_->Link(ctx_, "/moved", ctx_, "/linked", false)), 0);
  EXPECT_EQ(key("/linked"), upper_only);

  // A lower file: its key before the copy-up, after it, and through a
  // lookup made after it (of a second link: no cached dentry).
  auto lower = Resolve("/data");
  ASSERT_TRUE(lower.ok());
  const FileLockKey data = (*lower)->inode()->LockKey();
  auto rw = vfs_->Open(ctx_, "/data", O_RDWR, 0);  // copies up
  ASSERT_TRUE(rw.ok());
  EXPECT_EQ(key("/data"), data);
  ASSERT_EQ(ErrOf(vfs_->Link(ctx_, "/data", ctx_, "/data2", false)), 0);
  EXPECT_EQ(key("/data2"), data);
  // stat(2) shows them one inode number too (SQLite keys its per-file
  // lock state by st_dev/st_ino).
  struct stat host;
  ASSERT_EQ(stat((root_ + "/data").c_str(), &host), 0);
  EXPECT_EQ((*Resolve("/data"))->inode()->Stat()->st_ino, host.st_ino);
  EXPECT_EQ((*Resolve("/data2"))->inode()->Stat()->st_ino, host.st_ino);
  auto entries = (*Resolve("/"))->inode()->ReadDir();
  ASSERT_TRUE(entries.ok());
  for (const auto& e : *entries) {
    if (e.name == "data" || e.name == "data2") {
      EXPECT_EQ(e.ino, host.st_ino) << e.name;
    }
  }

  EXPECT_NE(data, upper_only);
  EXPECT_NE(key("/etc/marker"), data);
  EXPECT_NE(key("/etc/marker"), key("/dir/a"));
}

TEST_F(VfsTest, PermissionsForUnprivilegedCaller) {
  ResolveContext user = ctx_;
  user.creds.uid = 1000;
  user.creds.gid = 1000;
  user.creds.dac_override = user.creds.dac_read_search = user.creds.fowner = false;
  EXPECT_EQ(ErrOf(vfs_->Open(user, "/secret", O_RDONLY, 0)), EACCES);
  EXPECT_EQ(ErrOf(vfs_->Open(user, "/data", O_RDONLY, 0)), 0);
  EXPECT_EQ(ErrOf(vfs_->Open(user, "/data", O_WRONLY, 0)), EACCES);
  // Root reads anything but executes only what has an x bit.
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/secret", O_RDONLY, 0)), 0);
  auto st = (*Resolve("/secret"))->inode()->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(CheckAccess(ctx_.creds, *st, X_OK).ok(), false);
}

// Permission overrides come from capabilities, not from uid 0.
TEST_F(VfsTest, CapabilitiesNotUidOverridePermissions) {
  ResolveContext nobody = ctx_;
  nobody.creds.uid = 2000;
  nobody.creds.dac_override = nobody.creds.dac_read_search = false;
  EXPECT_EQ(ErrOf(vfs_->Open(nobody, "/secret", O_RDONLY, 0)), EACCES);
  ResolveContext reader = nobody;
  reader.creds.dac_read_search = true;  // CAP_DAC_READ_SEARCH alone: read, not write
  EXPECT_EQ(ErrOf(vfs_->Open(reader, "/secret", O_RDONLY, 0)), 0);
  EXPECT_EQ(ErrOf(vfs_->Open(reader, "/data", O_WRONLY, 0)), EACCES);
  ResolveContext writer = reader;
  writer.creds.dac_override = true;
  EXPECT_EQ(ErrOf(vfs_->Open(writer, "/data", O_WRONLY, 0)), 0);
}

TEST_F(VfsTest, CopyUpLeavesHostFileUnchanged) {
  auto f = vfs_->Open(ctx_, "/data", O_RDWR, 0);
  ASSERT_TRUE(f.ok());
  auto* tf = dynamic_cast<TmpfsFile*>(f->get());
  ASSERT_NE(tf, nullptr) << "a file opened for writing lives in the upper layer";
  ASSERT_TRUE(tf->WriteAt("CHANGED", 7, 0).ok());
  EXPECT_EQ(ReadVfs("/data"), "CHANGEDl");
  EXPECT_EQ(ReadHost(root_ + "/data"), "original");
  // O_TRUNC copies up and truncates the upper copy only.
  ASSERT_TRUE(vfs_->Open(ctx_, "/dir/a", O_WRONLY | O_TRUNC, 0).ok());
  EXPECT_EQ(ReadVfs("/dir/a"), "");
  EXPECT_EQ(ReadHost(root_ + "/dir/a"), "A");
  // chmod copies up too.
  SetAttrRequest r;
  r.mode = 0600;
  ASSERT_TRUE((*Resolve("/dir/b"))->inode()->SetAttr(r).ok());
  struct stat hst;
  ASSERT_EQ(stat((root_ + "/dir/b").c_str(), &hst), 0);
  EXPECT_EQ(hst.st_mode & 0777, 0644u);
  EXPECT_EQ((*Resolve("/dir/b"))->inode()->Stat()->st_mode & 0777, 0600u);
}

TEST_F(VfsTest, WhiteoutsHideLowerEntries) {
  ASSERT_EQ(ErrOf(vfs_->Unlink(ctx_, "/dir/a")), 0);
  EXPECT_EQ(ErrOf(Resolve("/dir/a")), ENOENT);
  EXPECT_EQ(ReadHost(root_ + "/dir/a"), "A");
  EXPECT_EQ(List("/dir"), (std::vector<std::string>{"b"}));
  // Re-creating the name gives a new, empty file.
  ASSERT_TRUE(vfs_->Open(ctx_, "/dir/a", O_CREAT | O_WRONLY, 0644).ok());
  EXPECT_EQ(ReadVfs("/dir/a"), "");
  EXPECT_EQ(ErrOf(vfs_->Unlink(ctx_, "/dir/a")), 0);
  EXPECT_EQ(ErrOf(Resolve("/dir/a")), ENOENT);
}

// The root mount keeps what was looked up last (Mount's dentry cache): a
// walk of the same path again finds every component without a host
// openat, as the same objects.
TEST_F(VfsTest, DentryCacheKeepsRecentLookups) {
  std::weak_ptr<Dentry> marker, etc;
  {
    auto d = Resolve("/etc/marker");
    ASSERT_TRUE(d.ok());
    marker = *d;
    etc = (*d)->parent();
  }
  EXPECT_FALSE(marker.expired()) << "an unused dentry of the overlay is kept";
  EXPECT_FALSE(etc.expired());
  auto again = Resolve("/etc/marker");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), marker.lock().get());
  // tmpfs (a mount of its own) costs nothing to look up again: not cached.
  ASSERT_TRUE(vfs_->Open(ctx_, "/dev/shm/x", O_CREAT | O_WRONLY, 0644).ok());
  std::weak_ptr<Dentry> shm = *Resolve("/dev/shm/x");
  EXPECT_TRUE(shm.expired());
}

// Removing a name drops its dentry from the cache at once: an unlinked
// file's data must not live on in it.
TEST_F(VfsTest, DentryCacheDropsRemovedNames) {
  std::weak_ptr<Dentry> made, lower, renamed;
  {
    auto f = vfs_->Open(ctx_, "/made", O_CREAT | O_WRONLY, 0644);
    ASSERT_TRUE(f.ok());
    made = *Resolve("/made");
    lower = *Resolve("/dir/a");
    renamed = *Resolve("/dir/b");
  }
  ASSERT_FALSE(made.expired());
  ASSERT_EQ(ErrOf(vfs_->Unlink(ctx_, "/made")), 0);
  EXPECT_TRUE(made.expired());
  ASSERT_EQ(ErrOf(vfs_->Unlink(ctx_, "/dir/a")), 0);
  EXPECT_TRUE(lower.expired());
  EXPECT_EQ(ErrOf(Resolve("/dir/a")), ENOENT);
  ASSERT_EQ(ErrOf(vfs_->Rename(ctx_, "/dir/b", ctx_, "/dir/c", 0)), 0);
  EXPECT_TRUE(renamed.expired());
  EXPECT_EQ(ErrOf(Resolve("/dir/b")), ENOENT);
  EXPECT_EQ(ReadVfs("/dir/c"), "B");
}

// The cache is bounded: the least recently used dentries go first.
TEST_F(VfsTest, DentryCacheIsBounded) {
  ASSERT_EQ(mkdir((root_ + "/many").c_str(), 0755), 0);
  const size_t n = Mount::kDentryCacheSize + 40;
  for (size_t i = 0; i < n; ++i) WriteHost(root_ + "/many/f" + std::to_string(i), "x");
  std::weak_ptr<Dentry> first;
  for (size_t i = 0; i < n; ++i) {
    auto d = Resolve("/many/f" + std::to_string(i));
    ASSERT_TRUE(d.ok()) << i;
    if (i == 0) first = *d;
  }
  Mount* m = vfs_->root()->mount();
  EXPECT_EQ(m->CachedDentries(), Mount::kDentryCacheSize);
  EXPECT_TRUE(first.expired());
  auto last = Resolve("/many/f" + std::to_string(n - 1));
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(m->CachedDentries(), Mount::kDentryCacheSize);
}

TEST_F(VfsTest, MergedReaddir) {
  ASSERT_TRUE(vfs_->Open(ctx_, "/dir/c", O_CREAT | O_WRONLY, 0644).ok());
  ASSERT_EQ(ErrOf(vfs_->Unlink(ctx_, "/dir/a")), 0);
  ASSERT_EQ(ErrOf(vfs_->Mkdir(ctx_, "/dir/sub", 0755)), 0);
  EXPECT_EQ(List("/dir"), (std::vector<std::string>{"b", "c", "sub"}));
}

TEST_F(VfsTest, OpaqueDirectoryAfterRmdirMkdir) {
  EXPECT_EQ(ErrOf(vfs_->Rmdir(ctx_, "/dir")), ENOTEMPTY);
  ASSERT_EQ(ErrOf(vfs_->Unlink(ctx_, "/dir/a")), 0);
  ASSERT_EQ(ErrOf(vfs_->Unlink(ctx_, "/dir/b")), 0);
  ASSERT_EQ(ErrOf(vfs_->Rmdir(ctx_, "/dir")), 0);
  EXPECT_EQ(ErrOf(Resolve("/dir")), ENOENT);
  ASSERT_EQ(ErrOf(vfs_->Mkdir(ctx_, "/dir", 0755)), 0);
  EXPECT_TRUE(List("/dir").empty());
  EXPECT_EQ(ErrOf(Resolve("/dir/a")), ENOENT);
  EXPECT_EQ(ReadHost(root_ + "/dir/a"), "A");
}

TEST_F(VfsTest, RenameFilesAndLowerDirs) {
  ASSERT_EQ(ErrOf(vfs_->Rename(ctx_, "/data", ctx_, "/moved", 0)), 0);
  EXPECT_EQ(ErrOf(Resolve("/data")), ENOENT);
  EXPECT_EQ(ReadVfs("/moved"), "original");
  EXPECT_EQ(ReadHost(root_ + "/data"), "original");
  // Lower directories cannot move (no redirect_dir), as Linux overlayfs.
  EXPECT_EQ(ErrOf(vfs_->Rename(ctx_, "/dir", ctx_, "/dir2", 0)), EXDEV);
  // Upper-only directories can; not into themselves.
  ASSERT_EQ(ErrOf(vfs_->Mkdir(ctx_, "/new", 0755)), 0);
  EXPECT_EQ(ErrOf(vfs_->Rename(ctx_, "/new", ctx_, "/new/inner", 0)), EINVAL);
  EXPECT_EQ(ErrOf(vfs_->Rename(ctx_, "/new", ctx_, "/new2", 0)), 0);
  EXPECT_EQ(ErrOf(vfs_->Rename(ctx_, "/moved", ctx_, "/etc/marker", RENAME_NOREPLACE)), EEXIST);
}

TEST_F(VfsTest, HardLinksAndSymlinks) {
  ASSERT_EQ(ErrOf(vfs_->Link(ctx_, "/data", ctx_, "/data2", false)), 0);
  EXPECT_EQ(ReadVfs("/data2"), "original");
  EXPECT_EQ((*Resolve("/data"))->inode()->Stat()->st_nlink, 2u);
  EXPECT_EQ(ErrOf(vfs_->Link(ctx_, "/dir", ctx_, "/dir3", false)), EPERM);
  ASSERT_EQ(ErrOf(vfs_->Symlink(ctx_, "data", "/sl")), 0);
  EXPECT_EQ(ReadVfs("/sl"), "original");
  auto target = vfs_->Readlink(ctx_, "/sl");
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(*target, "data");
  EXPECT_EQ(ErrOf(vfs_->Readlink(ctx_, "/data").ok() ? Status() : Status(Errno(EINVAL))),
            EINVAL);
}

TEST_F(VfsTest, DevShmIsATmpfsMount) {
  auto d = Resolve("/dev/shm");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)->IsMountRoot());
  EXPECT_EQ((*d)->Path(), "/dev/shm");
  auto f = vfs_->Open(ctx_, "/dev/shm/x", O_CREAT | O_RDWR, 0600);
  ASSERT_TRUE(f.ok());
  auto* tf = dynamic_cast<TmpfsFile*>(f->get());
  ASSERT_NE(tf, nullptr);
  ASSERT_TRUE(tf->WriteAt("hello", 5, 0).ok());
  EXPECT_EQ(ReadVfs("/dev/shm/x"), "hello");
  EXPECT_EQ((*Resolve("/dev/shm/../null"))->Path(), "/dev/null");
  EXPECT_EQ((*Resolve("/dev/shm/../.."))->Path(), "/");
  // Mount points cannot be removed; files cannot cross mounts by rename.
  EXPECT_EQ(ErrOf(vfs_->Rmdir(ctx_, "/dev/shm")), EBUSY);
  EXPECT_EQ(ErrOf(vfs_->Rename(ctx_, "/dev/shm/x", ctx_, "/x", 0)), EXDEV);
}

// A namespace's copy attaches each mount at the copy of its mount point
// as the object it is, not at whatever the mount point's path names now:
// after the directory above a mount point was renamed away and its old
// path made again, the copy, like the original, has no mount at that path.
TEST_F(VfsTest, NamespaceCopyKeepsMountPointsByIdentity) {
  ASSERT_EQ(ErrOf(vfs_->Mkdir(ctx_, "/m", 0755)), 0);
  ASSERT_EQ(ErrOf(vfs_->Mkdir(ctx_, "/m/d", 0755)), 0);
  auto at = Resolve("/m/d");
  ASSERT_TRUE(at.ok());
  auto tmpfs = std::make_shared<Mount>("tmpfs", "none", "rw", NewTmpfs(0755));
  ASSERT_EQ(ErrOf(vfs_->AttachIn(*vfs_->init_mount_ns(), *at, tmpfs)), 0);
  ASSERT_TRUE((*Resolve("/m/d"))->IsMountRoot());
  ASSERT_EQ(ErrOf(vfs_->Rename(ctx_, "/m", ctx_, "/n", 0)), 0);
  ASSERT_EQ(ErrOf(vfs_->Mkdir(ctx_, "/m", 0755)), 0);
  ASSERT_EQ(ErrOf(vfs_->Mkdir(ctx_, "/m/d", 0755)), 0);
  ASSERT_FALSE((*Resolve("/m/d"))->IsMountRoot());

  std::shared_ptr<FsContext> fs = vfs_->NewFsContext();
  vfs_->UnshareMountNamespace(*fs, 1234);
  ResolveContext copy{fs->root(), fs->cwd(), FsCreds{}, 022, nullptr, fs->mnt_ns()};
  auto d = vfs_->Resolve(copy, "/m/d", true);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE((*d)->IsMountRoot()) << "the copy's tmpfs went onto the new /m/d";
  EXPECT_EQ(vfs_->MountInfoText(fs->mnt_ns().get()), vfs_->MountInfoText());
}

TEST_F(VfsTest, GetdentsOffsetsResume) {
  auto f = vfs_->Open(ctx_, "/dir", O_RDONLY | O_DIRECTORY, 0);
  ASSERT_TRUE(f.ok());
  auto* dir = dynamic_cast<DirFile*>(f->get());
  ASSERT_NE(dir, nullptr);
  int64_t off = 0;
  // Room for one 24-byte record at a time.
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) {
    auto chunk = dir->FillDents(off, 24, true);
    ASSERT_TRUE(chunk.ok());
    if (chunk->empty()) break;
    names.push_back(std::string(chunk->data() + 19));
  }
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "a", "b"}));
  int64_t zero = 0;
  EXPECT_EQ(dir->FillDents(zero, 10, true).ok(), false);  // EINVAL: too small
}

TEST(TmpfsTest, Basics) {
  auto root = NewTmpfs(0755);
  FsCreds c;
  ASSERT_TRUE(root->Mkdir("d", 0755, c).ok());
  EXPECT_EQ(root->Mkdir("d", 0755, c).error(), Errno(EEXIST));
  auto f = root->Create("f", 0644, c);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(root->Stat()->st_nlink, 3u);
  EXPECT_EQ(root->Unlink("d").error(), Errno(EISDIR));
  EXPECT_EQ(root->Rmdir("f").error(), Errno(ENOTDIR));
  auto d = root->LookupNode("d");
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE((*d)->Create("inner", 0644, c).ok());
  EXPECT_EQ(root->Rmdir("d").error(), Errno(ENOTEMPTY));
  ASSERT_TRUE(root->Rename("f", **d, "g", 0).ok());
  EXPECT_EQ(root->Lookup("f").error(), Errno(ENOENT));
  EXPECT_TRUE((*d)->Lookup("g").ok());
  // A device node is a name with a number (what opening it reaches is the
  // VFS's business: the sentry's own device of that number, or ENXIO).
  ASSERT_TRUE(root->Mknod("dev", S_IFBLK | 0600, makedev(8, 0), c).ok());
  auto dev = root->LookupNode("dev");
  ASSERT_TRUE(dev.ok());
  EXPECT_TRUE(S_ISBLK((*dev)->Stat()->st_mode));
  EXPECT_EQ((*dev)->Stat()->st_rdev, makedev(8, 0));
  ASSERT_TRUE(root->Symlink("s", "target", c).ok());
  EXPECT_EQ(*root->LookupNode("s").value()->Readlink(), "target");
}

// A directory whose Stat counts its callers (a host-backed inode's Stat is
// a host fstatat: what a path walk should not repeat).
class CountingDir : public Inode {
 public:
  Result<struct stat> Stat() override {
    ++stats;
    struct stat st {};
    st.st_mode = S_IFDIR | 0755;
    st.st_ino = 4242;
    st.st_nlink = 2;
    return st;
  }
  int stats = 0;
};

TEST(InodeTest, TypeAsksStatOnce) {
  auto d = std::make_shared<CountingDir>();
  EXPECT_EQ(d->Type(), mode_t{S_IFDIR});
  EXPECT_EQ(d->Type(), mode_t{S_IFDIR});
  EXPECT_EQ(d->stats, 1);
  EXPECT_EQ(d->Stat()->st_mode, mode_t{S_IFDIR | 0755});  // Stat itself still asks
  EXPECT_EQ(d->stats, 2);
}

TEST(OverlayTest, CopiedUpObjectKeepsTheLowerInodeNumberAskingOnce) {
  auto lower = std::make_shared<CountingDir>();
  auto root = NewOverlay(NewTmpfs(0755), lower);
  int before = lower->stats;
  for (int i = 0; i < 3; ++i) {
    auto st = root->Stat();
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->st_ino, ino_t{4242});
    EXPECT_TRUE(S_ISDIR(st->st_mode));
  }
  EXPECT_EQ(lower->stats - before, 1);
}

// Runs `f` in a child whose host readlinkat(2) fails with EPERM; true if
// `f` returned true there.
bool WithoutHostReadlink(const std::function<bool()>& f) {
  pid_t pid = fork();
  if (pid == 0) {
    sock_filter prog[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_readlinkat, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog fprog{static_cast<unsigned short>(sizeof(prog) / sizeof(prog[0])), prog};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0) {
      _exit(2);
    }
    char probe[8];
    if (readlinkat(AT_FDCWD, "/proc/self/exe", probe, sizeof probe) >= 0 || errno != EPERM) {
      _exit(3);  // the filter is not in force
    }
    _exit(f() ? 0 : 1);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_F(VfsTest, HostSymlinkTargetIsReadOnce) {
  auto d = Resolve("/etc_link", /*follow=*/false);
  ASSERT_TRUE(d.ok());
  auto inode = (*d)->inode();
  auto target = inode->Readlink();
  ASSERT_TRUE(target.ok());
  ASSERT_EQ(*target, "/etc");
  // The second read needs no host readlinkat: a symlink's target never
  // changes while its inode lives.
  EXPECT_TRUE(WithoutHostReadlink([&] {
    auto again = inode->Readlink();
    return again.ok() && *again == "/etc";
  }));
  EXPECT_EQ(ReadVfs("/etc_link/marker"), "inside");
}

TEST(HostFsTest, RejectsMissingRoot) {
  EXPECT_FALSE(NewHostFs("/nonexistent/seedvisor-root").ok());
}

// OCI root.readonly: the root mount is "ro"; every change fails with EROFS,
// reads still work, and the other mounts (/dev/shm) stay writable.
TEST_F(VfsTest, ReadOnlyRootRefusesEveryChange) {
  auto ro = Vfs::CreateWithoutKernel({.host_root = root_, .read_only_root = true});
  ASSERT_TRUE(ro.ok()) << ro.status();
  ResolveContext c{(*ro)->root(), (*ro)->root(), FsCreds{}, 022};
  auto data = (*ro)->Open(c, "/data", O_RDONLY, 0);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(ErrOf((*ro)->Open(c, "/data", O_WRONLY, 0)), EROFS);
  EXPECT_EQ(ErrOf((*ro)->Open(c, "/data", O_RDONLY | O_TRUNC, 0)), EROFS);
  EXPECT_EQ(ErrOf((*ro)->Open(c, "/new", O_WRONLY | O_CREAT, 0644)), EROFS);
  EXPECT_EQ(ErrOf((*ro)->Open(c, "/data", O_RDONLY | O_CREAT, 0644)), 0);  // exists: no write
  EXPECT_EQ(ErrOf((*ro)->Mkdir(c, "/d2", 0755)), EROFS);
  EXPECT_EQ(ErrOf((*ro)->Unlink(c, "/data")), EROFS);
  EXPECT_EQ(ErrOf((*ro)->Rmdir(c, "/dir")), EROFS);
  EXPECT_EQ(ErrOf((*ro)->Rename(c, "/data", c, "/data2", 0)), EROFS);
  EXPECT_EQ(ErrOf((*ro)->Symlink(c, "/data", "/sl")), EROFS);
  EXPECT_EQ(ErrOf((*ro)->Link(c, "/data", c, "/hl", false)), EROFS);
  EXPECT_EQ(ErrOf((*ro)->Open(c, "/dev/shm/x", O_WRONLY | O_CREAT, 0644)), 0);
  // The writable default is unchanged.
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/new", O_WRONLY | O_CREAT, 0644)), 0);
}

// containerd's CRI binds a host file (/etc/resolv.conf) into a read-only pause
// image that lacks it: MountAt makes the mount point, an empty file, below the
// read-only check (runc makes mount points before it remounts the root
// read-only); the host file shows there and the root stays read-only.
TEST_F(VfsTest, FileBindMakesItsMountPointOnReadOnlyRoot) {
  WriteHost(root_ + "/resolv.host", "nameserver 10.0.0.1\n");
  auto ro = Vfs::CreateWithoutKernel({.host_root = root_, .read_only_root = true});
  ASSERT_TRUE(ro.ok()) << ro.status();
  auto file = NewHostFile(root_ + "/resolv.host");
  ASSERT_TRUE(file.ok()) << file.status();
  ASSERT_TRUE((*ro)->MountAt("/etc/resolv.conf",
                             std::make_shared<Mount>("bind", "resolv.host", "ro", *file))
                  .ok());
  vfs_ = std::move(*ro);
  ctx_ = ResolveContext{vfs_->root(), vfs_->root(), FsCreds{}, 022};
  EXPECT_EQ(ReadVfs("/etc/resolv.conf"), "nameserver 10.0.0.1\n");
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/etc/resolv.conf", O_WRONLY, 0)), EROFS);
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/etc/other", O_WRONLY | O_CREAT, 0644)), EROFS);
  // The host root is untouched: the mount point lives in the overlay.
  EXPECT_NE(access((root_ + "/etc/resolv.conf").c_str(), F_OK), 0);
  // A directory is not a file's source, nor a missing path.
  EXPECT_FALSE(NewHostFile(root_ + "/dir").ok());
  EXPECT_FALSE(NewHostFile(root_ + "/missing").ok());
}

// OCI linux.readonlyPaths: the subtree is a read-only bind of itself; the
// rest stays writable; mounts below come along (MS_REC).
TEST_F(VfsTest, ReadOnlyPathBindsTheSubtreeReadOnly) {
  ASSERT_TRUE(vfs_->ReadOnlyPath("/dir").ok());
  ASSERT_TRUE(vfs_->ReadOnlyPath("/no/such/path").ok());  // skipped, as runc does
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/dir/a", O_RDONLY, 0)), 0);
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/dir/a", O_WRONLY, 0)), EROFS);
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/dir/new", O_WRONLY | O_CREAT, 0644)), EROFS);
  EXPECT_EQ(ErrOf(vfs_->Unlink(ctx_, "/dir/b")), EROFS);
  EXPECT_EQ(ErrOf(vfs_->Mkdir(ctx_, "/dir/sub", 0755)), EROFS);
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/data", O_WRONLY, 0)), 0);
  // Lookups cross into the bind and ".." leads back out.
  auto a = Resolve("/dir/a");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)->Path(), "/dir/a");
  EXPECT_NE((*a)->mount(), vfs_->root()->mount());
  auto up = Resolve("/dir/../etc/marker");
  ASSERT_TRUE(up.ok());
  EXPECT_EQ((*up)->mount(), vfs_->root()->mount());
  // The bind is read-only, its filesystem is not (mountinfo's two columns).
  EXPECT_NE(vfs_->MountInfoText().find(" /dir /dir ro,relatime - overlay overlay rw\n"),
            std::string::npos)
      << vfs_->MountInfoText();
  EXPECT_NE(vfs_->MountsText().find("overlay /dir overlay ro,"), std::string::npos);

  auto dev_before = Resolve("/dev");
  ASSERT_TRUE(dev_before.ok());
  ASSERT_TRUE(vfs_->ReadOnlyPath("/dev").ok());
  // A bind is the same filesystem: the same device (clone_mnt()).
  auto dev_after = Resolve("/dev");
  ASSERT_TRUE(dev_after.ok());
  ASSERT_NE((*dev_after)->mount(), (*dev_before)->mount());
  auto st_before = StatOf(dev_before->get()), st_after = StatOf(dev_after->get());
  ASSERT_TRUE(st_before.ok() && st_after.ok());
  EXPECT_EQ(st_after->st_dev, st_before->st_dev);
  EXPECT_EQ(ErrOf(vfs_->Mknod(ctx_, "/dev/fifo", S_IFIFO | 0600, 0)), EROFS);
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/dev/shm/x", O_WRONLY | O_CREAT, 0644)), 0);
  auto shm = Resolve("/dev/shm");
  ASSERT_TRUE(shm.ok());
  EXPECT_EQ((*shm)->Path(), "/dev/shm");
}

// The mounts below a read-only path come along as copies of their own
// (MS_REC: copy_tree()), as runc's recursive bind makes them: /proc/mounts
// shows both; unmounting the copy through the bind leaves the original,
// which shows again once the bind goes. Old seedsc: one Mount at both
// places, listed once and unmounted from both.
TEST_F(VfsTest, ReadOnlyPathCopiesTheMountsBelowIt) {
  auto count = [](const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  auto shm_before = Resolve("/dev/shm");
  ASSERT_TRUE(shm_before.ok());
  ASSERT_TRUE(vfs_->ReadOnlyPath("/dev").ok());
  EXPECT_EQ(count(vfs_->MountsText(), " /dev/shm "), 2) << vfs_->MountsText();
  auto shm = Resolve("/dev/shm");
  ASSERT_TRUE(shm.ok());
  ASSERT_NE((*shm)->mount(), (*shm_before)->mount());
  MountNamespace& ns = *vfs_->init_mount_ns();
  EXPECT_EQ(ErrOf(vfs_->DetachIn(ns, *shm, false)), 0);
  EXPECT_EQ(count(vfs_->MountsText(), " /dev/shm "), 1);
  auto under = Resolve("/dev/shm");
  ASSERT_TRUE(under.ok());
  EXPECT_EQ((*under)->mount(), vfs_->TopMountOn(ns, *Resolve("/dev"))->mount());
  EXPECT_EQ(ErrOf(vfs_->DetachIn(ns, vfs_->TopMountOn(ns, *Resolve("/dev")), true)), 0);
  auto again = Resolve("/dev/shm");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->mount(), (*shm_before)->mount());
}

// OCI linux.maskedPaths: a file reads as /dev/null, a directory is an empty
// read-only tmpfs.
TEST_F(VfsTest, MaskPathHidesFilesAndDirectories) {
  ASSERT_TRUE(vfs_->MaskPath("/secret").ok());
  ASSERT_TRUE(vfs_->MaskPath("/dir").ok());
  ASSERT_TRUE(vfs_->MaskPath("/nonexistent").ok());
  auto secret = Resolve("/secret");
  ASSERT_TRUE(secret.ok());
  auto st = (*secret)->inode()->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_TRUE(S_ISCHR(st->st_mode));
  EXPECT_EQ(st->st_rdev, makedev(1, 3));
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/secret", O_WRONLY, 0)), 0);  // /dev/null takes writes
  EXPECT_EQ(ErrOf(vfs_->Unlink(ctx_, "/secret")), EBUSY);
  auto dir = Resolve("/dir");
  ASSERT_TRUE(dir.ok());
  auto list = (*dir)->inode()->ReadDir();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/dir/a", O_RDONLY, 0)), ENOENT);
  EXPECT_EQ(ErrOf(vfs_->Open(ctx_, "/dir/new", O_WRONLY | O_CREAT, 0644)), EROFS);
  std::string info = vfs_->MountInfoText();
  EXPECT_NE(info.find(" / /dir ro - tmpfs tmpfs ro\n"), std::string::npos) << info;
  EXPECT_NE(info.find(" /null /secret rw,nosuid - tmpfs none rw\n"), std::string::npos) << info;
  // The masking bind is /dev's filesystem: /dev/null's device.
  auto null = Resolve("/dev/null");
  ASSERT_TRUE(null.ok());
  auto st_null = StatOf(null->get()), st_secret = StatOf(secret->get());
  ASSERT_TRUE(st_null.ok() && st_secret.ok());
  EXPECT_EQ(st_secret->st_dev, st_null->st_dev);
  EXPECT_EQ(info.find("nonexistent"), std::string::npos);
}

}  // namespace
}  // namespace seedvisor::sentry
