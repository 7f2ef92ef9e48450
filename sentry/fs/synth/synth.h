// Synthetic inodes for filesystems whose content the sentry makes up (/dev,
// /proc): directories with fixed and/or computed children, symlinks with a
// computed target, files whose text is generated at open, and devices whose
// open makes a FileDescription.
//
//   auto dir = std::make_shared<SynthDir>(0555);
//   dir->Add("version", SynthFile::Text([] { return std::string("Linux ...\n"); }));
//   dir->Add("self", std::make_shared<SynthSymlink>([] { return ...; }));
#ifndef SEEDVISOR_SENTRY_FS_SYNTH_SYNTH_H_
#define SEEDVISOR_SENTRY_FS_SYNTH_SYNTH_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

// What lseek(2) does with SEEK_END, SEEK_DATA and SEEK_HOLE on a synthetic
// file or directory; SEEK_SET and SEEK_CUR work on all.
enum class SynthSeek {
  kDefault,    // files: SEEK_END at the content's end; dirs: EINVAL
  kSeqFile,    // seq_lseek() (most of /proc): all three EINVAL
  kSizeZero,   // generic_file_llseek() with i_size 0 (/proc/PID/cmdline,
               // /proc/sys, /proc and sysfs dirs): END at 0, DATA/HOLE ENXIO
  kSysfsPage,  // a sysfs attribute: generic_file_llseek() with i_size 4096
};

class SynthInode : public Inode {
 public:
  // `mode` includes the S_IFMT bits.
  SynthInode(mode_t mode, dev_t dev = 0, uid_t uid = 0, gid_t gid = 0);
  Result<struct stat> Stat() override;
  Status SetAttr(const SetAttrRequest& req) override;
  Result<struct statfs> StatFs() override;
  void set_owner(uid_t uid, gid_t gid);
  // Ownership looked up at every stat instead, given the inode's mode (a
  // /proc/PID entry is its task's: task_dump_owner()).
  using OwnerFn = std::function<std::pair<uid_t, gid_t>(mode_t)>;
  void set_owner_fn(OwnerFn fn);
  bool has_owner_fn();
  void set_fs_magic(long m) { magic_ = m; }
  SynthSeek seek() const { return seek_; }
  void set_seek(SynthSeek s) { seek_ = s; }

 protected:
  std::mutex st_mu_;
  struct stat st_ {};
  long magic_ = 0x01021994;
  SynthSeek seek_ = SynthSeek::kDefault;
  OwnerFn owner_fn_;  // guarded by st_mu_
};

class SynthDir : public SynthInode {
 public:
  using LookupFn = std::function<Result<InodeRef>(std::string_view)>;
  using ListFn = std::function<std::vector<DirEntry>()>;
  explicit SynthDir(mode_t perm = 0555, dev_t dev = 0);

  void Add(std::string name, InodeRef child);
  // Computed children, looked at after the fixed ones.
  void SetDynamic(LookupFn lookup, ListFn list);

  Result<InodeRef> Lookup(std::string_view name) override;
  Result<std::vector<DirEntry>> ReadDir() override;
  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override;
  // This directory and every directory below it (now and added later,
  // computed ones included) seek as `dirs`, the files below as `files`,
  // except where a child chose otherwise (set_seek) first.
  void SetSubtreeSeek(SynthSeek dirs, SynthSeek files);
  // This directory and everything below it (now and added later, computed
  // children included) take their owner from `fn`, except where a child
  // has an owner function of its own already.
  void SetSubtreeOwner(OwnerFn fn);

 private:
  void ApplySubtreeSeek(const InodeRef& child);
  void ApplySubtreeOwner(const InodeRef& child);
  std::mutex mu_;
  OwnerFn subtree_owner_;  // guarded by mu_
  SynthSeek subtree_dirs_ = SynthSeek::kDefault;   // guarded by mu_
  SynthSeek subtree_files_ = SynthSeek::kDefault;  // guarded by mu_
  std::map<std::string, InodeRef, std::less<>> children_;
  LookupFn lookup_;
  ListFn list_;
};

class SynthSymlink : public SynthInode {
 public:
  using TargetFn = std::function<Result<std::string>()>;
  using MagicFn = std::function<std::shared_ptr<Dentry>()>;
  explicit SynthSymlink(TargetFn target, dev_t dev = 0);
  static std::shared_ptr<SynthSymlink> Fixed(std::string target);
  Result<std::string> Readlink() override;
  // Makes this a magic link to the dentry `magic` returns (when non-null).
  void set_magic(MagicFn magic) { magic_ = std::move(magic); }
  std::shared_ptr<Dentry> MagicTarget() override { return magic_ ? magic_() : nullptr; }

 private:
  TargetFn target_;
  MagicFn magic_;
};

// A read-only (or, with a write handler, writable) file whose content is
// generated when it is opened.
class SynthFile : public SynthInode {
 public:
  using ContentFn = std::function<Result<std::string>()>;
  using WriteFn = std::function<Status(std::string_view)>;
  SynthFile(ContentFn content, mode_t perm = 0444, dev_t dev = 0);
  static std::shared_ptr<SynthFile> Text(std::function<std::string()> f);
  void set_write(WriteFn w) { write_ = std::move(w); }
  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override;

 private:
  ContentFn content_;
  WriteFn write_;
};

// A character device: `open` makes the FileDescription.
class SynthDevice : public SynthInode {
 public:
  using OpenFn = std::function<Result<FileRef>(const std::shared_ptr<Dentry>&, int)>;
  SynthDevice(OpenFn open, dev_t rdev, mode_t perm = 0666, dev_t dev = 0);
  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override;

 private:
  OpenFn open_;
};

// A seekable FileDescription over a string snapshot.
class StringFile : public FileDescription {
 public:
  StringFile(int flags, DentryRef d, std::string data,
             std::function<Status(std::string_view)> write = nullptr,
             SynthSeek seek = SynthSeek::kDefault);
  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> PRead(Task& t, char* buf, size_t len, int64_t offset) override;
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;
  Result<int64_t> Seek(int64_t offset, int whence) override;
  Status Sync() override { return {}; }

 private:
  const std::string data_;
  std::function<Status(std::string_view)> write_;
  const SynthSeek seek_;
};

uint64_t NextSynthIno();

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_SYNTH_SYNTH_H_
