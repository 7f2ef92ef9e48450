// DirFile (inode.h): an open directory: its listing, lseek(2) on it and
// getdents(2)/getdents64(2).
#include <fcntl.h>

#include <cstring>
#include <string>
#include <utility>

#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

DirFile::DirFile(int flags, DentryRef d) : FileDescription(flags, std::move(d)) {}

Result<size_t> DirFile::Read(Task&, char*, size_t) { return Errno(EISDIR); }
Result<size_t> DirFile::PRead(Task&, char*, size_t, int64_t) { return Errno(EISDIR); }

Status DirFile::Refresh() {
  SV_ASSIGN_OR_RETURN(auto list, dentry()->inode()->ReadDir());
  SV_ASSIGN_OR_RETURN(struct stat self, dentry()->inode()->Stat());
  entries_.clear();
  entries_.push_back({".", self.st_ino, DT_DIR});
  uint64_t parent_ino = self.st_ino;
  if (dentry()->parent()) {
    auto pst = dentry()->parent()->inode()->Stat();
    if (pst.ok()) parent_ino = pst->st_ino;
  }
  entries_.push_back({"..", parent_ino, DT_DIR});
  for (auto& e : list) entries_.push_back(std::move(e));
  loaded_ = true;
  return {};
}

Result<int64_t> DirFile::Seek(int64_t offset, int whence) {
  std::lock_guard l(offset_mu_);
  int64_t base;
  switch (whence) {
    case SEEK_SET: base = 0; break;
    case SEEK_CUR: base = offset_; break;
    default: return Errno(EINVAL);
  }
  if (base + offset < 0) return Errno(EINVAL);
  offset_ = base + offset;
  // Rewinding re-reads the directory, as readdir after rewinddir(3) must see
  // entries created since.
  if (offset_ == 0) loaded_ = false;
  return offset_;
}

Result<std::string> DirFile::FillDents(int64_t& offset, size_t len, bool dents64) {
  if (!loaded_ || offset == 0) SV_TRY(Refresh());
  std::string out;
  while (offset >= 0 && static_cast<size_t>(offset) < entries_.size()) {
    const DirEntry& e = entries_[offset];
    size_t namelen = e.name.size();
    size_t reclen;
    if (dents64) {
      reclen = (19 + namelen + 1 + 7) & ~size_t{7};  // linux_dirent64
    } else {
      reclen = (18 + namelen + 2 + 7) & ~size_t{7};  // linux_dirent: name, NUL, d_type
    }
    if (out.size() + reclen > len) break;
    std::string rec(reclen, '\0');
    uint64_t ino = e.ino;
    int64_t next = offset + 1;
    uint16_t rl = static_cast<uint16_t>(reclen);
    if (dents64) {
      memcpy(&rec[0], &ino, 8);
      memcpy(&rec[8], &next, 8);
      memcpy(&rec[16], &rl, 2);
      rec[18] = static_cast<char>(e.type);
      memcpy(&rec[19], e.name.data(), namelen);
    } else {
      memcpy(&rec[0], &ino, 8);
      memcpy(&rec[8], &next, 8);
      memcpy(&rec[16], &rl, 2);
      memcpy(&rec[18], e.name.data(), namelen);
      rec[reclen - 1] = static_cast<char>(e.type);
    }
    out += rec;
    ++offset;
  }
  if (out.empty() && offset >= 0 && static_cast<size_t>(offset) < entries_.size()) {
    return Errno(EINVAL);  // buffer too small for one entry
  }
  return out;
}

Result<size_t> DirFile::GetDents64(Task& t, UserAddr buf, size_t len) {
  std::lock_guard l(offset_mu_);
  int64_t off = offset_;
  SV_ASSIGN_OR_RETURN(std::string out, FillDents(off, len, true));
  if (!out.empty()) SV_TRY(TaskCopyOut(t, buf, out.data(), out.size()));
  offset_ = off;
  return out.size();
}

Result<size_t> DirFile::GetDents(Task& t, UserAddr buf, size_t len) {
  std::lock_guard l(offset_mu_);
  int64_t off = offset_;
  SV_ASSIGN_OR_RETURN(std::string out, FillDents(off, len, false));
  if (!out.empty()) SV_TRY(TaskCopyOut(t, buf, out.data(), out.size()));
  offset_ = off;
  return out.size();
}

}  // namespace seedvisor::sentry
