// FanotifyFile: one fanotify(7) group (fanotify_init(2)).
//
// Marks (fanotify_mark(2)) sit on an object (its Inode), on a mount, or on
// a whole filesystem instance, each with an event mask and an ignored mask.
// The VFS reports what guest tasks do through the fsnotify hook
// (sentry/vfs/fsnotify.h's FanotifyHook); a group that marked the object,
// its mount, its filesystem, or its directory with FAN_EVENT_ON_CHILD
// queues one event (fsnotify() then fanotify_handle_event()): the mask,
// the task, and the path. read(2) opens the path for the reader, in the
// reader's own fd table, and returns struct fanotify_event_metadata
// records; the listener never gets a host fd.
//
// The queue holds kMaxQueued events (FAN_UNLIMITED_QUEUE: kHardMaxQueued,
// the sentry's bound), then one FAN_Q_OVERFLOW; an event on the same path
// by the same task as one still queued merges into it (fanotify_merge()).
// A group holds at most kMaxMarks marks (ENOSPC past them).
//
//   SV_ASSIGN_OR_RETURN(auto g, FanotifyFile::Create(flags, O_RDONLY, O_RDONLY));
//   SV_TRY(g->Mark(FanotifyFile::kInode, dentry, FAN_OPEN | FAN_CLOSE, 0, FAN_MARK_ADD));
//   SV_ASSIGN_OR_RETURN(size_t n, g->Read(t, buf, sizeof(buf)));
#ifndef SEEDVISOR_SENTRY_FS_FANOTIFY_FANOTIFY_H_
#define SEEDVISOR_SENTRY_FS_FANOTIFY_FANOTIFY_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "sentry/fs/anon/hostfd_file.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {

class FanotifyFile : public HostFdFile {
 public:
  static constexpr size_t kMaxQueued = 16384;       // FANOTIFY_DEFAULT_MAX_EVENTS
  static constexpr size_t kHardMaxQueued = 1 << 18;  // FAN_UNLIMITED_QUEUE's bound here
  static constexpr size_t kMaxMarks = 8192;          // FANOTIFY_DEFAULT_MAX_MARKS
  static constexpr size_t kHardMaxMarks = 1 << 16;   // FAN_UNLIMITED_MARKS's bound here
  static constexpr int kMaxGroups = 128;             // FANOTIFY_DEFAULT_MAX_GROUPS

  enum MarkType { kInode, kMount, kFilesystem };

  // `init_flags`: fanotify_init(2)'s flags, checked by the caller;
  // `event_f_flags`: how event files are opened; `file_flags`: this file's
  // (O_RDWR | O_NONBLOCK?); `fd_limit`: RLIMIT_NOFILE of a reader, for
  // the event fds. EMFILE past kMaxGroups live groups.
  static Result<std::shared_ptr<FanotifyFile>> Create(unsigned init_flags,
                                                      unsigned event_f_flags, int file_flags,
                                                      std::function<int(Task&)> fd_limit);
  FanotifyFile(unsigned init_flags, unsigned event_f_flags, int file_flags, int efd);
  ~FanotifyFile() override;

  // fanotify_mark(2) of `d`'s object, mount or filesystem: `flags` has
  // FAN_MARK_ADD or FAN_MARK_REMOVE (ENOENT: no such mark), maybe
  // FAN_MARK_IGNORED_MASK and FAN_MARK_IGNORED_SURV_MODIFY.
  Status Mark(MarkType type, const DentryRef& d, uint64_t mask, unsigned flags);
  // FAN_MARK_FLUSH: every mark of `type`.
  void Flush(MarkType type);

  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task&, const char*, size_t) override { return Errno(EINVAL); }
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  absl::Status AdoptInForkChild(ForkFileContext&) override {
    return RecreateReadinessEventFdInForkChild();
  }
  std::string FdInfo() override;

  // The fsnotify hook: `mask` happened to what `d` names.
  static void Deliver(const Dentry& d, uint32_t mask);

 private:
  struct MarkState {
    uint64_t mask = 0;
    uint64_t ignored = 0;
    bool surv_modify = false;
    DentryRef keep;  // keeps the object (and its mount) alive and cached
  };
  struct Ev {
    uint64_t mask = 0;
    DentryRef d;  // null for FAN_Q_OVERFLOW
    int pid = 0;  // global tgid or tid (FAN_REPORT_TID)
  };
  // One object's event for this group: the marks that match, merged or
  // queued. Under mu_.
  void HandleLocked(const Dentry& d, uint32_t mask, int pid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetReadyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::map<const void*, MarkState>& MarksOf(MarkType type) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t MarkCountLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const unsigned init_flags_;
  const unsigned event_f_flags_;
  std::function<int(Task&)> fd_limit_;  // set once by Create
  std::mutex mu_;
  std::deque<Ev> queue_ ABSL_GUARDED_BY(mu_);
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  // Marks by object: the Inode, the Mount, the filesystem's FsId().
  std::map<const void*, MarkState> inode_marks_ ABSL_GUARDED_BY(mu_);
  std::map<const void*, MarkState> mount_marks_ ABSL_GUARDED_BY(mu_);
  std::map<const void*, MarkState> fs_marks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_FANOTIFY_FANOTIFY_H_
