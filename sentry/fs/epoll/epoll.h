// EpollFile: an epoll(7) instance backed by a host epoll fd.
//
// Every guest file that can be polled has a host fd (FileDescription::
// PollFd()), so a guest registration becomes a host registration of that fd:
// level/edge triggering, EPOLLONESHOT, EPOLLEXCLUSIVE, nesting and loop
// detection are the host kernel's. Files without a host fd (regular files,
// most of /dev and /proc) are refused with EPERM, as Linux refuses files
// without a poll operation.
//
// Linux keys an interest by (file, fd): the same open file may be added
// under two fds (after dup), each with its own events and data, and both
// stay until the file itself is released (epoll(7), "Questions and
// answers" 1 and 6). Here the first registration of a file uses its own
// host fd; another fd's registration of the same file uses a host dup of it
// (so the host sees a different (file, fd) too). The host event carries a
// registration id that Wait turns back into the guest's epoll_data. When a
// registered file is released (FileDescription::OnRelease) its
// registrations go, closing the dups, so that no dup keeps, say, a pipe's
// write end open.
//
// A file's PollFd() may change once, to a host fd only another kind of host
// object can offer (a seccomp listener whose filter is orphaned: POLLHUP
// alone). The old fd reports a hangup then; a registration that hears one
// moves to the file's new PollFd() and reports what that one shows.
//
//   auto ep = std::make_shared<EpollFile>(O_RDWR, epoll_create1(EPOLL_CLOEXEC));
//   SV_TRY(ep->Ctl(EPOLL_CTL_ADD, target, fd, ev));
//   SV_ASSIGN_OR_RETURN(int n, ep->Wait(t, events, max, &deadline, false));
#ifndef SEEDVISOR_SENTRY_FS_EPOLL_EPOLL_H_
#define SEEDVISOR_SENTRY_FS_EPOLL_EPOLL_H_

#include <sys/epoll.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "sentry/fs/anon/hostfd_file.h"

namespace seedvisor::sentry {

class EpollFile : public HostFdFile {
 public:
  EpollFile(int flags, int host_epfd) : HostFdFile(flags, host_epfd, "anon_inode:[eventpoll]") {}
  ~EpollFile() override;

  // read(2)/write(2) on an epoll fd fail with EINVAL.
  Result<size_t> Read(Task&, char*, size_t) override { return Errno(EINVAL); }
  Result<size_t> Write(Task&, const char*, size_t) override { return Errno(EINVAL); }

  // epoll_ctl(2) of `target`, which the guest passed as `fd`. `ev` is
  // ignored for EPOLL_CTL_DEL.
  Status Ctl(int op, const FileRef& target, int fd, const epoll_event& ev);
  // epoll_wait(2) into `out` (max entries); null `deadline` = forever,
  // `poll_only` = a zero timeout. EINTR when a signal arrives.
  Result<int> Wait(Task& t, epoll_event* out, int max, const timespec* deadline, bool poll_only);

  // Sandbox fork: the host epoll is rebuilt once every file adopted its
  // host state (ForkFileContext::deferred): a new host epoll with the same
  // registrations, on the files' own (possibly new) PollFd()s, with each
  // registration's current mask as the seed's host epoll has it (a fired
  // EPOLLONESHOT stays disabled). Readiness is re-evaluated, so an
  // edge-triggered registration may report once more what it reported in
  // the seed (a spurious edge, which epoll(7) users must tolerate anyway).
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

 private:
  using Key = std::pair<const FileDescription*, int>;  // (file, guest fd)
  struct Registration {
    Key key;  // its entry in ids_
    std::weak_ptr<FileDescription> file;
    int host_fd = -1;       // the file's PollFd(), or our dup of it
    int src_fd = -1;        // that PollFd()
    bool owns_host_fd = false;
    uint64_t data = 0;      // the guest's epoll_data
    uint32_t events = 0;    // as last given to EPOLL_CTL_ADD/MOD
  };
  absl::Status RebuildInForkChild(ForkFileContext& ctx);
  // Registers `id` (left out by RebuildInForkChild: a stdio file of a fork
  // made ahead) with `events` once its file has its stdio.
  absl::Status RegisterLaterInForkChild(uint64_t id, uint32_t events);
  // Adds `r` (registration `id`, of `f`) with `events` to host epoll `ep`
  // on `f`'s PollFd() now, or on a dup of it if `r` owns one; `when` goes
  // into the error.
  absl::Status AddInForkChild(int ep, uint64_t id, uint32_t events, Registration& r,
                              FileDescription& f, const char* when);
  bool rebuilt_ = false;  // in a forked sentry (its only thread, no lock)

  // After a hangup on `r`'s host fd: if its file polls another host fd
  // (`now`, its PollFd()), registers that one instead (with r's events)
  // and says true.
  bool FollowPollFdLocked(uint64_t id, Registration& r, int now);
  // Wait's events out[0, kept) where `hups` (out[index] is a hangup of
  // registration `id`) follow their file's new PollFd(): those events are
  // dropped. Returns the events left. Takes mu_.
  struct HangupSeen {
    int index;
    uint64_t id;
    FileRef file;
    int now = -1;
  };
  int FollowMovedPollFds(epoll_event* out, int kept, std::vector<HangupSeen>& hups);
  // Forgets the registrations of a released file (closing their dups).
  void Released(const FileDescription* file);
  void DropLocked(uint64_t id);
  // The first registration of `f` in ids_ (ordered by file, then fd), or
  // past it: a file's registrations are found without a walk of all.
  std::map<Key, uint64_t>::iterator FirstOfLocked(const FileDescription* f);

  std::mutex mu_;
  std::map<Key, uint64_t> ids_;              // guarded by mu_
  // Files whose release we hear about (one hook per file and instance).
  std::map<const FileDescription*, std::weak_ptr<FileDescription>> hooked_;  // by mu_
  std::map<uint64_t, Registration> regs_;    // guarded by mu_
  uint64_t next_id_ = 1;                     // guarded by mu_
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_EPOLL_EPOLL_H_
