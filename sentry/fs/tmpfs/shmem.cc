#include "sentry/fs/tmpfs/shmem.h"

#include <fcntl.h>
#include <sys/sysinfo.h>

#include <atomic>

#include "absl/strings/str_cat.h"

namespace seedvisor::sentry {
namespace {

class ShmemFile : public TmpfsFile {
 public:
  ShmemFile(int flags, DentryRef d, std::shared_ptr<TmpfsInode> inode, std::string path)
      : TmpfsFile(flags, std::move(d), std::move(inode)), path_(std::move(path)) {}
  std::string DisplayPath() const override { return path_; }

 private:
  const std::string path_;
};

}  // namespace

Result<std::shared_ptr<TmpfsFile>> NewShmemFile(uint64_t size, std::string display_path, int flags,
                                                uid_t uid, gid_t gid) {
  static std::atomic<uint64_t> next{0};
  static const std::shared_ptr<TmpfsInode> root = NewTmpfs(01777);
  std::string slot = absl::StrCat(next.fetch_add(1));
  FsCreds c;
  c.uid = uid;
  c.gid = gid;
  SV_ASSIGN_OR_RETURN(auto inode, root->Create(slot, S_IFREG | 0600, c));
  (void)root->Unlink(slot);
  auto node = std::static_pointer_cast<TmpfsInode>(inode);
  SetAttrRequest req;
  req.size = static_cast<int64_t>(size);
  if (Status s = node->SetAttr(req); !s.ok()) {
    return s.error().value() == EFBIG ? Errno(ENOMEM) : s.error();
  }
  auto d = std::make_shared<Dentry>(slot, nullptr, inode, nullptr);
  d->MarkDeleted();
  return std::static_pointer_cast<TmpfsFile>(
      std::make_shared<ShmemFile>(flags | O_LARGEFILE, d, node, std::move(display_path)));
}

Status CheckShmemReserve(uint64_t size) {
  struct sysinfo si;
  if (sysinfo(&si) != 0) return {};
  const uint64_t total = (static_cast<uint64_t>(si.totalram) + si.totalswap) * si.mem_unit;
  if (size > total) return Errno(ENOMEM);
  return {};
}

std::shared_ptr<TmpfsFile> ReopenShmemFile(const TmpfsFile &f, int flags) {
  return std::make_shared<ShmemFile>(flags | O_LARGEFILE, f.dentry(), f.inode(), f.DisplayPath());
}

}  // namespace seedvisor::sentry
