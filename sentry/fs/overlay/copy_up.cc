// overlay (overlay.h): copy-up, the first change to a lower object makes
// its upper copy. What is copied follows Linux's overlayfs
// (fs/overlayfs/copy_up.c): directories, symlinks, fifos and sockets as
// nodes, regular files with their data. A regular file's data is copied as
// ovl_copy_up_data() does: st_size bytes as stat(2) gave them, never "to
// the end", holes skipped (SEEK_DATA/SEEK_HOLE), and a fatal signal ends
// the copy with EINTR. A host file whose stat size says nothing about its
// data (tracefs's trace_pipe and /proc files show 0 and never end) so
// copies up empty instead of hanging the task on a host read.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "sentry/fs/host/host.h"
#include "sentry/fs/overlay/overlay.h"
#include "sentry/fs/overlay/overlay_fs.h"

namespace seedvisor::sentry {
namespace {

// How much is read between two checks for a fatal signal.
constexpr size_t kCopyChunk = 64 * 1024;

// Reads up to `len` bytes at `off` from `src` (opened O_NONBLOCK): a host
// file that has nothing to read yet is waited for in short polls, each
// followed by a check for a fatal signal, so that no host read blocks the
// task beyond a SIGKILL.
Result<size_t> ReadKillable(int src, char* buf, size_t len, off_t off) {
  for (;;) {
    if (CurrentTaskKilled()) return Errno(EINTR);
    ssize_t n = pread(src, buf, len, off);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return Errno(errno);
    pollfd p = {src, POLLIN, 0};
    (void)poll(&p, 1, 100);
  }
}

Status WriteAll(int dst, const char* buf, size_t len, off_t off) {
  for (size_t done = 0; done < len;) {
    ssize_t w = pwrite(dst, buf + done, len - done, off + static_cast<off_t>(done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Errno(errno);
    done += static_cast<size_t>(w);
  }
  return {};
}

// Copies [0, size) of host file `src` into the empty memfd `dst`: only
// data segments (a sparse file stays sparse, as ovl_copy_up_file() skips
// holes), at most `size` bytes. A file that ends early ends the copy there.
Status CopyHostData(int src, int dst, off_t size) {
  if (size <= 0) return {};
  if (ftruncate(dst, size) != 0) return Errno(errno);
  char buf[kCopyChunk];
  off_t off = 0;
  while (off < size) {
    if (CurrentTaskKilled()) return Errno(EINTR);
    off_t data = lseek(src, off, SEEK_DATA);
    off_t hole = size;
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    if (data < 0) {
      data = off;  // no SEEK_DATA on this host file system: all data
    } else {
      hole = lseek(src, data, SEEK_HOLE);
      if (hole < 0 || hole > size) hole = size;
    }
    if (data >= size) break;
    for (off_t in = data; in < hole;) {
      size_t want = static_cast<size_t>(std::min<off_t>(kCopyChunk, hole - in));
      SV_ASSIGN_OR_RETURN(size_t n, ReadKillable(src, buf, want, in));
      if (n == 0) {  // shorter than it said: the copy ends where the file did
        if (ftruncate(dst, in) != 0) return Errno(errno);
        return {};
      }
      SV_TRY(WriteAll(dst, buf, n, in));
      in += static_cast<off_t>(n);
    }
    off = hole;
  }
  return {};
}

}  // namespace

Status OverlayInode::CopyUp() {
  std::lock_guard l(mu_);
  if (upper_) return {};
  if (!parent_ || !lower_) return Errno(EIO);
  SV_ASSIGN_OR_RETURN(auto pup, parent_->UpperDir());
  SV_ASSIGN_OR_RETURN(struct stat st, lower_->Stat());
  FsCreds c;
  c.uid = st.st_uid;
  c.gid = st.st_gid;
  mode_t perm = st.st_mode & 07777;
  switch (st.st_mode & S_IFMT) {
    case S_IFDIR:
      SV_TRY(pup->Mkdir(name_, perm, c));
      break;
    case S_IFLNK: {
      SV_ASSIGN_OR_RETURN(std::string target, lower_->Readlink());
      SV_TRY(pup->Symlink(name_, target, c));
      break;
    }
    case S_IFREG: {
      auto* host = dynamic_cast<HostInode*>(lower_.get());
      if (!host) return Errno(EXDEV);
      SV_ASSIGN_OR_RETURN(int src, host->OpenForRead());
      (void)fcntl(src, F_SETFL, O_NONBLOCK);
      auto created = pup->Create(name_, perm, c);
      if (!created.ok()) {
        close(src);
        return created.error();
      }
      // An empty file stays without a memfd (tmpfs.h).
      Status s;
      if (st.st_size > 0) {
        Result<int> dst = std::static_pointer_cast<TmpfsInode>(*created)->WritableMemfd();
        s = dst.ok() ? CopyHostData(src, *dst, st.st_size) : Status(dst.error());
      }
      close(src);
      if (!s.ok()) {
        (void)pup->Unlink(name_);
        return s;
      }
      break;
    }
    case S_IFIFO:
    case S_IFSOCK:
      SV_TRY(pup->Mknod(name_, st.st_mode, 0, c));
      break;
    default:
      return Errno(EPERM);  // host device nodes are never copied up
  }
  SV_ASSIGN_OR_RETURN(auto node, pup->LookupNode(name_));
  SetAttrRequest r;
  r.mode = perm;
  r.uid = st.st_uid;
  r.gid = st.st_gid;
  r.atime = st.st_atim;
  r.mtime = st.st_mtim;
  SV_TRY(node->SetAttr(r));
  if (auto up = node->Stat(); up.ok()) {
    std::lock_guard o(fs_->origins_mu);
    fs_->origins[up->st_ino] = {st.st_dev, st.st_ino};
  }
  upper_ = node;
  return {};
}

}  // namespace seedvisor::sentry
