// InotifyFile: one inotify(7) instance (inotify_init1(2)).
//
// Its watches live in the fsnotify registry (sentry/vfs/fsnotify.h), which
// calls Event() for what guest tasks do to watched objects. Events queue
// here, up to kMaxQueued (fs.inotify.max_queued_events' default); then one
// IN_Q_OVERFLOW. An event identical to the last queued one is dropped
// (inotify_merge()). read(2) returns whole struct inotify_event records,
// names NUL-padded to a multiple of 16 bytes; readiness for poll/epoll comes
// from a host eventfd that is readable while events wait.
//
//   SV_ASSIGN_OR_RETURN(auto f, InotifyFile::Create(O_RDONLY | O_NONBLOCK, euid));
//   SV_ASSIGN_OR_RETURN(int wd, f->AddWatch(dentry, IN_CREATE | IN_DELETE));
//   SV_ASSIGN_OR_RETURN(size_t n, f->Read(t, buf, sizeof(buf)));
#ifndef SEEDVISOR_SENTRY_FS_INOTIFY_INOTIFY_H_
#define SEEDVISOR_SENTRY_FS_INOTIFY_INOTIFY_H_

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sentry/fs/anon/hostfd_file.h"
#include "sentry/fs/inotify/inotify_limits.h"
#include "sentry/vfs/fsnotify.h"

namespace seedvisor::sentry {

class InotifyFile : public HostFdFile, public FsnotifySink {
 public:
  static constexpr size_t kMaxQueued = 16384;

  // An instance of the user `uid` (the creator's effective uid), counted
  // against fs.inotify.max_user_instances (EMFILE) and its watches
  // against max_user_watches (ENOSPC): inotify_limits.h.
  static Result<std::shared_ptr<InotifyFile>> Create(int flags, uid_t uid);
  InotifyFile(int flags, int efd, InotifyCharge instance, uid_t uid);
  ~InotifyFile() override;

  // inotify_add_watch(2) on `d` (resolved and permission-checked by the
  // caller): the watch descriptor, the same one again for the same file
  // (its LockKey(), as the registry's watches: every path and every Inode
  // object of it, a renamed overlay entry's included).
  Result<int> AddWatch(const DentryRef& d, uint32_t mask);
  // inotify_rm_watch(2): EINVAL for an unknown wd.
  Status RemoveWatch(int wd);

  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task&, const char*, size_t) override { return Errno(EINVAL); }
  // Sandbox fork: the queue is sentry memory; the readiness eventfd is
  // recreated with its count.
  absl::Status AdoptInForkChild(ForkFileContext&) override {
    return RecreateReadinessEventFdInForkChild();
  }
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  // inotify_fasync(): O_ASYNC sticks; each queued event is an edge of the
  // eventfd, so its owner gets POLL_IN per event (fsnotify_add_event()).
  bool SupportsAsync() const override { return true; }
  bool SigioFromReadiness() const override { return true; }

  void Event(int wd, uint32_t mask, uint32_t cookie, std::string_view name) override;
  // inotify_fdinfo(): a line per watch, "inotify wd:%x ino:%lx sdev:%x
  // mask:%x ignored_mask:0" (the object's inode number and its kernel
  // dev_t; the mask with IN_ONESHOT and IN_EXCL_UNLINK); no file handle.
  std::string FdInfo() override;

 private:
  struct Ev {
    int wd;
    uint32_t mask, cookie;
    std::string name;
    size_t size() const;  // bytes as read(2) returns it
    bool operator==(const Ev& o) const {
      return wd == o.wd && mask == o.mask && cookie == o.cookie && name == o.name;
    }
  };
  void SetReadyLocked();

  std::mutex mu_;
  std::deque<Ev> queue_;
  size_t queued_bytes_ = 0;
  bool ready_ = false;
  int next_wd_ = 1;
  std::map<FileLockKey, int> wds_;  // watched file -> wd
  // wd -> the Inode object it was added through, for FdInfo's Stat; the
  // registry's watch holds its dentry until Event(IN_IGNORED) forgets it.
  std::map<int, const Inode*> objects_;
  std::map<int, uint32_t> masks_;  // wd -> mask
  const InotifyCharge instance_;
  const uid_t uid_;
  std::map<int, InotifyCharge> watch_charges_;  // wd -> its max_user_watches charge
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_INOTIFY_INOTIFY_H_
