// poll, ppoll, select, pselect6.
//
// Readiness comes from each file's PollFd() (a host fd: stdio and sockets
// themselves; for pipes and eventfds a host object the sentry keeps polling
// as the sentry object's state says);
// files without one (regular files, /dev/null ...) are always ready for
// reading and writing, as DEFAULT_POLLMASK in Linux. Waiting uses
// Task::BlockOnFd on the single host fd, or on an epoll fd holding all of
// them, so a signal ends the wait (ERESTARTNOHAND: EINTR if a handler ran).
//
// ppoll/pselect6 swap in their signal mask for the wait; PrepareToRun puts
// the old one back (after a handler's frame saved it, if a signal came).
#include <poll.h>
#include <sys/personality.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <unistd.h>

#include <map>

#include "absl/synchronization/mutex.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"

#include "sentry/syscalls/sys_file.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace file_internal {

timespec MonotonicNowTimespec() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts;
}

timespec AddTimespec(timespec a, timespec b) {
  timespec r{a.tv_sec + b.tv_sec, a.tv_nsec + b.tv_nsec};
  if (r.tv_nsec >= 1000000000) {
    r.tv_sec++;
    r.tv_nsec -= 1000000000;
  }
  return r;
}

namespace {

constexpr short kDefaultMask = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;

bool Before(const timespec& a, const timespec& b) {
  return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

}  // namespace

Result<int> DoPoll(Task& t, std::vector<pollfd>& pfds, const timespec* deadline) {
  int epfd = -1;
  struct EpCloser {
    int& fd;
    ~EpCloser() {
      if (fd >= 0) close(fd);
    }
  } closer{epfd};
  for (;;) {
    int ready = 0;
    std::vector<pollfd> host;
    std::vector<size_t> host_idx;  // pfds index for each host entry
    // and the events its file reports beside the host fd's (an eventfd's
    // overflow): asked while the file is at hand, no reference kept.
    std::vector<short> host_errors;
    for (size_t i = 0; i < pfds.size(); ++i) {
      pollfd& p = pfds[i];
      p.revents = 0;
      if (p.fd < 0) continue;
      auto f = t.fds().Get(p.fd);
      if (!f.ok()) {
        p.revents = POLLNVAL;
        ++ready;
        continue;
      }
      int hfd = (*f)->PollFd();
      if (hfd < 0) {
        p.revents = static_cast<short>(p.events & kDefaultMask);
        if (p.revents) ++ready;
        continue;
      }
      host.push_back({hfd, p.events, 0});
      host_idx.push_back(i);
      host_errors.push_back((*f)->PollErrorEvents());
    }
    if (!host.empty()) {
      int r = poll(host.data(), host.size(), 0);
      if (r < 0 && errno != EINTR) return Errno(errno);
      for (size_t j = 0; j < host.size(); ++j) {
        pollfd& p = pfds[host_idx[j]];
        // POLLHUP/POLLERR are always reported; the rest only if asked for.
        p.revents = static_cast<short>(
            (host[j].revents | host_errors[j]) & (p.events | POLLHUP | POLLERR | POLLNVAL));
        if (p.revents) ++ready;
      }
    }
    if (ready > 0) return ready;
    if (deadline && !Before(MonotonicNowTimespec(), *deadline)) return 0;

    Status s;
    if (host.size() == 1) {
      s = t.BlockOnFd(host[0].fd, host[0].events, deadline);
    } else if (host.empty()) {
      s = t.Block(deadline);
    } else {
      if (epfd >= 0) close(epfd);
      epfd = epoll_create1(EPOLL_CLOEXEC);
      if (epfd < 0) return Errno(errno);
      std::map<int, uint32_t> merged;
      for (const auto& h : host) merged[h.fd] |= static_cast<uint32_t>(h.events);
      for (const auto& [fd, ev] : merged) {
        epoll_event e{};
        e.events = ev;
        e.data.fd = fd;
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e) != 0) return Errno(errno);
      }
      s = t.BlockOnFd(epfd, POLLIN, deadline);
    }
    if (!s.ok()) {
      if (s.error() == Errno(ETIMEDOUT)) continue;  // the next pass returns 0
      return Errno(kERESTARTNOHAND);
    }
  }
}

}  // namespace file_internal

namespace {

Result<std::vector<pollfd>> CopyInPollfds(Task& t, UserAddr addr, uint64_t n) {
  if (n > static_cast<uint64_t>(FdLimit(t))) return Errno(EINVAL);
  std::vector<pollfd> pfds(n);
  if (n) SV_TRY(t.CopyIn(addr, pfds.data(), n * sizeof(pollfd)));
  return pfds;
}

SyscallReturn PollCommon(Task& t, UserAddr addr, uint64_t n, const timespec* deadline) {
  SV_ASSIGN_OR_RETURN(auto pfds, CopyInPollfds(t, addr, n));
  SV_ASSIGN_OR_RETURN(int ready, DoPoll(t, pfds, deadline));
  // Only revents are written back.
  for (size_t i = 0; i < pfds.size(); ++i) {
    SV_TRY(t.CopyOut(addr + i * sizeof(pollfd) + offsetof(pollfd, revents), &pfds[i].revents,
                     sizeof(short)));
  }
  return static_cast<uint64_t>(ready);
}

Result<timespec> DeadlineFromTimespec(Task& t, UserAddr addr) {
  timespec ts;
  SV_TRY(t.CopyInObj(addr, &ts));
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000) return Errno(EINVAL);
  return AddTimespec(MonotonicNowTimespec(), ts);
}

SyscallReturn SelectCommon(Task& t, int nfds, UserAddr rd, UserAddr wr, UserAddr ex,
                           const timespec* deadline) {
  if (nfds < 0) return Errno(EINVAL);
  nfds = std::min(nfds, FdLimit(t));
  size_t words = (static_cast<size_t>(nfds) + 63) / 64;
  std::vector<uint64_t> sets[3];
  UserAddr addrs[3] = {rd, wr, ex};
  for (int k = 0; k < 3; ++k) {
    sets[k].assign(words, 0);
    if (!addrs[k].IsNull() && words) SV_TRY(t.CopyIn(addrs[k], sets[k].data(), words * 8));
  }
  std::vector<pollfd> pfds;
  for (int fd = 0; fd < nfds; ++fd) {
    short ev = 0;
    uint64_t bit = uint64_t{1} << (fd % 64);
    if (sets[0][fd / 64] & bit) ev |= POLLIN | POLLRDNORM;
    if (sets[1][fd / 64] & bit) ev |= POLLOUT | POLLWRNORM;
    if (sets[2][fd / 64] & bit) ev |= POLLPRI;
    if (!ev) continue;
    if (!t.fds().Get(fd).ok()) return Errno(EBADF);
    pfds.push_back({fd, ev, 0});
  }
  SV_ASSIGN_OR_RETURN(int ready, DoPoll(t, pfds, deadline));
  (void)ready;
  for (auto& s : sets) std::fill(s.begin(), s.end(), 0);
  int count = 0;
  for (const auto& p : pfds) {
    uint64_t bit = uint64_t{1} << (p.fd % 64);
    // select(2) counts each fd once per set it is ready in.
    if ((p.events & POLLIN) && (p.revents & (POLLIN | POLLRDNORM | POLLHUP | POLLERR))) {
      sets[0][p.fd / 64] |= bit;
      ++count;
    }
    if ((p.events & POLLOUT) && (p.revents & (POLLOUT | POLLWRNORM | POLLERR))) {
      sets[1][p.fd / 64] |= bit;
      ++count;
    }
    if ((p.events & POLLPRI) && (p.revents & POLLPRI)) {
      sets[2][p.fd / 64] |= bit;
      ++count;
    }
  }
  for (int k = 0; k < 3; ++k) {
    if (!addrs[k].IsNull() && words) SV_TRY(t.CopyOut(addrs[k], sets[k].data(), words * 8));
  }
  return static_cast<uint64_t>(count);
}

timespec Remaining(const timespec& deadline) {
  timespec now = MonotonicNowTimespec();
  timespec r{deadline.tv_sec - now.tv_sec, deadline.tv_nsec - now.tv_nsec};
  if (r.tv_nsec < 0) {
    r.tv_sec--;
    r.tv_nsec += 1000000000;
  }
  if (r.tv_sec < 0) r = {0, 0};
  return r;
}

}  // namespace

SyscallReturn SysPoll(Task& t, const SyscallArgs& a) {
  int timeout = a.Int(2);
  timespec deadline;
  const timespec* dl = nullptr;
  if (timeout >= 0) {
    deadline = AddTimespec(MonotonicNowTimespec(), {timeout / 1000, (timeout % 1000) * 1000000L});
    dl = &deadline;
  }
  return PollCommon(t, a.Addr(0), a.Ulong(1), dl);
}

namespace file_internal {

Status SwapSigmask(Task& t, UserAddr set, size_t size) {
  if (set.IsNull()) return {};
  if (size != sizeof(SigSet)) return Errno(EINVAL);
  SigSet mask;
  SV_TRY(t.CopyInObj(set, &mask));
  absl::MutexLock l(&t.kernel().mu());
  t.saved_mask_ = t.signal_mask();
  t.restore_saved_mask_ = true;
  t.set_signal_mask(mask);
  return {};
}

}  // namespace file_internal

namespace {

// poll_select_finish(): a personality with STICKY_TIMEOUTS keeps the
// caller's timeout as it was.
bool StickyTimeouts(const Task& t) { return (t.personality() & STICKY_TIMEOUTS) != 0; }

}  // namespace

SyscallReturn SysPpoll(Task& t, const SyscallArgs& a) {
  timespec deadline;
  const timespec* dl = nullptr;
  if (!a.Addr(2).IsNull()) {
    SV_ASSIGN_OR_RETURN(deadline, DeadlineFromTimespec(t, a.Addr(2)));
    dl = &deadline;
  }
  SV_TRY(SwapSigmask(t, a.Addr(3), a.Size(4)));
  auto r = PollCommon(t, a.Addr(0), a.Ulong(1), dl);
  if (dl && !a.Addr(2).IsNull() && r.ok() && !StickyTimeouts(t)) {
    timespec rem = Remaining(deadline);
    (void)t.CopyOutObj(a.Addr(2), rem);
  }
  return r;
}

SyscallReturn SysSelect(Task& t, const SyscallArgs& a) {
  timespec deadline;
  const timespec* dl = nullptr;
  if (!a.Addr(4).IsNull()) {
    timeval tv;
    SV_TRY(t.CopyInObj(a.Addr(4), &tv));
    if (tv.tv_sec < 0 || tv.tv_usec < 0 || tv.tv_usec >= 1000000) return Errno(EINVAL);
    deadline = AddTimespec(MonotonicNowTimespec(), {tv.tv_sec, tv.tv_usec * 1000});
    dl = &deadline;
  }
  auto r = SelectCommon(t, a.Int(0), a.Addr(1), a.Addr(2), a.Addr(3), dl);
  if (dl && r.ok() && !StickyTimeouts(t)) {
    // Linux select(2) writes back the time left.
    timespec rem = Remaining(deadline);
    timeval tv{rem.tv_sec, rem.tv_nsec / 1000};
    (void)t.CopyOutObj(a.Addr(4), tv);
  }
  return r;
}

SyscallReturn SysPselect6(Task& t, const SyscallArgs& a) {
  timespec deadline;
  const timespec* dl = nullptr;
  if (!a.Addr(4).IsNull()) {
    SV_ASSIGN_OR_RETURN(deadline, DeadlineFromTimespec(t, a.Addr(4)));
    dl = &deadline;
  }
  if (!a.Addr(5).IsNull()) {
    // pselect6's last argument: {const sigset_t* ss; size_t ss_len}.
    struct {
      uint64_t ss;
      uint64_t len;
    } sm;
    SV_TRY(t.CopyInObj(a.Addr(5), &sm));
    SV_TRY(SwapSigmask(t, UserAddr(sm.ss), sm.len));
  }
  auto r = SelectCommon(t, a.Int(0), a.Addr(1), a.Addr(2), a.Addr(3), dl);
  if (dl && r.ok() && !StickyTimeouts(t)) {
    timespec rem = Remaining(deadline);
    (void)t.CopyOutObj(a.Addr(4), rem);
  }
  return r;
}

}  // namespace seedvisor::sentry
