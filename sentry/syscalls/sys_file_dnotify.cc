// dnotify: fcntl(F_NOTIFY) on a directory (fcntl(2), "File and directory
// change notification"; fs/notify/dnotify/dnotify.c). Built on the same
// event source as inotify (sentry/vfs/fsnotify.h): a watch per open file
// description on its directory's inode. An event on the directory or on an
// entry of it that the DN_* mask asks for sends the description's owner
// (the process that called F_NOTIFY last) SIGIO, or the F_SETSIG signal
// with si_fd the fd F_NOTIFY was given and POLL_MSG, before the syscall
// that caused it returns. Without DN_MULTISHOT the watch goes after its
// first signal. A close(2) by the process that set it, or the last close
// of the description, removes it.
//
// DN_* to fsnotify (convert_arg()): DN_ACCESS IN_ACCESS, DN_MODIFY
// IN_MODIFY, DN_ATTRIB IN_ATTRIB, DN_CREATE IN_CREATE and IN_MOVED_TO,
// DN_DELETE IN_DELETE and IN_MOVED_FROM, DN_RENAME a rename within the
// directory (FS_DN_RENAME: IN_MOVED_FROM and IN_MOVED_TO of one cookie on
// the same watch); a rename into or out of it is no DN_RENAME.
#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>

#include "sentry/kernel/file_owner.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/vfs/fsnotify.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace {

struct DnWatch {
  std::weak_ptr<FileDescription> file;
  const void* fds;     // the fd table F_NOTIFY was called from (dn_owner)
  int fd;              // si_fd
  unsigned long mask;  // DN_* including DN_MULTISHOT
  Kernel* kernel;
  uint32_t moved_from_cookie = 0;  // of the last IN_MOVED_FROM seen
  bool spent = false;              // a one-shot watch that signalled
};

uint32_t InotifyMaskOf(unsigned long dn) {
  uint32_t m = 0;
  if (dn & DN_ACCESS) m |= IN_ACCESS;
  if (dn & DN_MODIFY) m |= IN_MODIFY;
  if (dn & DN_ATTRIB) m |= IN_ATTRIB;
  if (dn & DN_CREATE) m |= IN_CREATE | IN_MOVED_TO;
  if (dn & DN_DELETE) m |= IN_DELETE | IN_MOVED_FROM;
  if (dn & DN_RENAME) m |= IN_MOVED_FROM | IN_MOVED_TO;
  return m;
}

class DnotifySink : public FsnotifySink {
 public:
  // Called with the fsnotify registry's lock held: takes only mu_, and
  // leaves the signal (the kernel's lock) and a one-shot watch's removal
  // (the registry's) for after it.
  void Event(int wd, uint32_t mask, uint32_t cookie, std::string_view) override {
    std::lock_guard l(mu_);
    auto it = watches_.find(wd);
    if (it == watches_.end()) return;
    DnWatch& w = it->second;
    if (mask & IN_IGNORED) {  // the directory is gone
      watches_.erase(it);
      return;
    }
    if (w.spent) return;
    unsigned long hit = 0;
    if (mask & IN_ACCESS) hit |= DN_ACCESS;
    if (mask & IN_MODIFY) hit |= DN_MODIFY;
    if (mask & IN_ATTRIB) hit |= DN_ATTRIB;
    if (mask & (IN_CREATE | IN_MOVED_TO)) hit |= DN_CREATE;
    if (mask & (IN_DELETE | IN_MOVED_FROM)) hit |= DN_DELETE;
    if (mask & IN_MOVED_FROM) w.moved_from_cookie = cookie;
    if ((mask & IN_MOVED_TO) && cookie != 0 && cookie == w.moved_from_cookie) {
      hit |= DN_RENAME;
      w.moved_from_cookie = 0;
    }
    if (!(hit & w.mask)) return;
    const bool once = !(w.mask & DN_MULTISHOT);
    if (once) w.spent = true;
    FsnotifyAfterEvents([this, wd, once, file = w.file, k = w.kernel, fd = w.fd] {
      if (FileRef f = file.lock()) SendSigioMsg(*k, *f, fd);
      if (once) Remove(wd);
    });
  }

  // F_NOTIFY with a mask: adds to the watch of `f` from `fds`, or makes one.
  void Add(Task& t, const FileRef& f, int fd, unsigned long mask) {
    int wd;
    unsigned long all;
    {
      std::lock_guard l(mu_);
      auto it = by_file_.find(f.get());
      if (it != by_file_.end() && watches_.count(it->second) &&
          watches_[it->second].fds == &t.fds()) {
        wd = it->second;
        DnWatch& w = watches_[wd];
        w.fd = fd;
        w.mask |= mask;  // attach_dn(): more events for the same watch
        w.spent = false;
        all = w.mask;
      } else {
        if (it != by_file_.end()) watches_.erase(it->second);
        wd = next_wd_++;
        watches_[wd] = DnWatch{f, &t.fds(), fd, mask, &t.kernel()};
        by_file_[f.get()] = wd;
        files_.store(static_cast<int>(by_file_.size()));
        all = mask;
      }
    }
    FsnotifyAddWatch(f->dentry(), this, wd, InotifyMaskOf(all));
    // The last close of the description takes its watch along.
    const FileDescription* key = f.get();
    f->OnRelease(this, [this, key](const FileDescription*) { RemoveFile(key, nullptr); });
  }

  // dnotify_flush(): the watch of `f` set from the fd table `fds` (any, if
  // null) goes.
  void RemoveFile(const FileDescription* f, const void* fds) {
    if (files_.load() == 0) return;  // every close(2) asks
    int wd;
    {
      std::lock_guard l(mu_);
      auto it = by_file_.find(f);
      if (it == by_file_.end()) return;
      auto w = watches_.find(it->second);
      if (fds != nullptr && w != watches_.end() && w->second.fds != fds) return;
      wd = it->second;
      by_file_.erase(it);
      files_.store(static_cast<int>(by_file_.size()));
      if (w != watches_.end()) watches_.erase(w);
    }
    FsnotifyRemoveWatch(this, wd, false);
  }

 private:
  void Remove(int wd) {
    {
      std::lock_guard l(mu_);
      auto it = watches_.find(wd);
      if (it == watches_.end()) return;
      std::erase_if(by_file_, [wd](const auto& e) { return e.second == wd; });
      files_.store(static_cast<int>(by_file_.size()));
      watches_.erase(it);
    }
    FsnotifyRemoveWatch(this, wd, false);
  }

  std::mutex mu_;
  std::map<int, DnWatch> watches_;                 // guarded by mu_
  std::map<const FileDescription*, int> by_file_;  // guarded by mu_
  int next_wd_ = 1;                                // guarded by mu_
  std::atomic<int> files_{0};                      // by_file_.size()
};

DnotifySink& Sink() {
  static auto* sink = new DnotifySink;  // leaked: events may come during exit
  return *sink;
}

}  // namespace

namespace file_internal {

// fcntl_dirnotify(): a mask of nothing but DN_MULTISHOT removes the
// watch; any other is ENOTDIR on a file that is no directory. The caller's
// process becomes the file's owner (__f_setown()), as for a lease.
SyscallReturn FcntlNotify(Task& t, FileDescription& f, int fd, unsigned long arg) {
  if ((arg & ~static_cast<unsigned long>(DN_MULTISHOT)) == 0) {
    Sink().RemoveFile(&f, &t.fds());
    return 0;
  }
  SV_ASSIGN_OR_RETURN(struct stat st, f.Stat());
  if (!S_ISDIR(st.st_mode) || !f.dentry()) return Errno(ENOTDIR);
  // __f_setown() without force: an owner set by F_SETOWN stays.
  if (f.async_owner().pid == nullptr) SV_TRY(SetFileOwner(t, f, F_OWNER_PID, t.vtgid()));
  Sink().Add(t, f.shared_from_this(), fd, arg);
  return 0;
}

void DnotifyFlush(Task& t, FileDescription& f) { Sink().RemoveFile(&f, &t.fds()); }

}  // namespace file_internal

}  // namespace seedvisor::sentry
