// EpollFile: an epoll(7) instance backed by a host epoll fd.
//
// Every guest file that can be polled has a host fd (FileDescription::
// PollFd()), so a guest registration becomes a host registration of that fd
// with the guest's events and epoll_data unchanged: level/edge triggering,
// EPOLLONESHOT, EPOLLEXCLUSIVE, nesting and loop detection are the host
// kernel's. Like Linux, a registration goes away when the file description
// is closed (the host fd closes with it). Files without a host fd (regular
// files, most of /dev and /proc) are refused with EPERM, as Linux refuses
// files without a poll operation.
//
//   auto ep = std::make_shared<EpollFile>(O_RDWR, epoll_create1(EPOLL_CLOEXEC));
//   SV_TRY(ep->Ctl(EPOLL_CTL_ADD, *target, ev));
//   SV_ASSIGN_OR_RETURN(int n, ep->Wait(t, events, max, &deadline));
#ifndef SEEDVISOR_SENTRY_FS_EPOLL_EPOLL_H_
#define SEEDVISOR_SENTRY_FS_EPOLL_EPOLL_H_

#include <sys/epoll.h>

#include "sentry/fs/anon/hostfd_file.h"

namespace seedvisor::sentry {

class EpollFile : public HostFdFile {
 public:
  EpollFile(int flags, int host_epfd) : HostFdFile(flags, host_epfd, "anon_inode:[eventpoll]") {}

  // read(2)/write(2) on an epoll fd fail with EINVAL.
  Result<size_t> Read(Task&, char*, size_t) override { return Errno(EINVAL); }
  Result<size_t> Write(Task&, const char*, size_t) override { return Errno(EINVAL); }

  // epoll_ctl(2). `ev` is ignored for EPOLL_CTL_DEL.
  Status Ctl(int op, FileDescription& target, const epoll_event& ev);
  // epoll_wait(2) into `out` (max entries); null `deadline` = forever,
  // `poll_only` = a zero timeout. EINTR when a signal arrives.
  Result<int> Wait(Task& t, epoll_event* out, int max, const timespec* deadline, bool poll_only);
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_EPOLL_EPOLL_H_
