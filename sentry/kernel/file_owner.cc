#include "sentry/kernel/file_owner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pid_namespace.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/thread_group.h"

namespace seedvisor::sentry {

namespace {

// send_sigio_to_task()'s band_table, by reason - POLL_IN.
long BandOf(int reason) {
  switch (reason) {
    case POLL_IN:
      return POLLIN | POLLRDNORM;
    case POLL_OUT:
      return POLLOUT | POLLWRNORM | POLLWRBAND;
    case POLL_MSG:
      return POLLIN | POLLRDNORM | POLLMSG;
    case POLL_ERR:
      return POLLERR;
    case POLL_PRI:
      return POLLPRI | POLLRDBAND;
    case POLL_HUP:
      return POLLHUP | POLLERR;
    default:
      return ~0L;
  }
}

// sigio_perm(): whoever set the owner may signal `target` only as one of
// its users (or as root): a guest user cannot make its socket's SIGIO
// (whose default action ends the process) reach another user's process.
bool MaySignal(const FileDescription::AsyncOwner& o, const Task& target) {
  const Credentials& c = target.creds();
  return o.euid == 0 || o.euid == c.suid || o.euid == c.ruid || o.uid == c.suid ||
         o.uid == c.ruid;
}

// The task whose credentials process `tg` shows: its leader, or while the
// leader is gone, a thread of it.
const Task* CredTask(const ThreadGroup& tg) {
  if (tg.leader != nullptr) return tg.leader;
  return tg.tasks.empty() ? nullptr : tg.tasks.front();
}

// pid_task(), under Kernel::mu(): the thread, process or process group
// that holds the id `p` as it was given to it (not reaped, the id not given
// to another since).
std::shared_ptr<Task> OwnerTaskLocked(Kernel& k, const PidNumbers& p) {
  std::shared_ptr<Task> task = k.TaskByTid(p.global());
  return task != nullptr && task->pid_numbers().get() == &p ? task : nullptr;
}

std::shared_ptr<ThreadGroup> OwnerProcessLocked(Kernel& k, const PidNumbers& p) {
  std::shared_ptr<ThreadGroup> tg = k.ThreadGroupByTgid(p.global());
  return tg != nullptr && tg->pid_numbers.get() == &p ? tg : nullptr;
}

bool OwnerGroupExistsLocked(Kernel& k, const PidNumbers& p) {
  return k.ProcessGroupExistsLocked(p.global()) && k.NumbersOfLocked(p.global()).get() == &p;
}

bool OwnerExistsLocked(Kernel& k, const FileDescription::AsyncOwner& o) {
  if (o.pid == nullptr) return false;
  switch (o.type) {
    case F_OWNER_TID:
      return OwnerTaskLocked(k, *o.pid) != nullptr;
    case F_OWNER_PID:
      return OwnerProcessLocked(k, *o.pid) != nullptr;
    default:
      return OwnerGroupExistsLocked(k, *o.pid);
  }
}

// send_sigio()/send_sigurg(): `info` to the task, process or process group
// that `o` names, if it is still there and sigio_perm() allows. F_SETSIG's
// signal is the owner's choice, never forced.
void SignalOwner(Kernel& k, const FileDescription::AsyncOwner& o, const siginfo_t& info) {
  if (o.pid == nullptr) return;
  absl::MutexLock l(&k.mu());
  switch (o.type) {
    case F_OWNER_TID:
      if (auto task = OwnerTaskLocked(k, *o.pid); task && !task->exited() && MaySignal(o, *task)) {
        k.SendTaskSignal(*task, info, nullptr, SignalSender::kSandboxTask).ok();
      }
      return;
    case F_OWNER_PID:
      if (auto tg = OwnerProcessLocked(k, *o.pid);
          tg && tg->state == ThreadGroup::State::kAlive && CredTask(*tg) != nullptr &&
          MaySignal(o, *CredTask(*tg))) {
        k.SendGroupSignal(*tg, info, nullptr, SignalSender::kSandboxTask).ok();
      }
      return;
    default: {
      if (!OwnerGroupExistsLocked(k, *o.pid)) return;
      const int pgid = o.pid->global();
      std::vector<ThreadGroup*> sent;
      for (const auto& task : k.Tasks()) {
        ThreadGroup& tg = task->tg();
        if (tg.pgid != pgid || tg.state != ThreadGroup::State::kAlive) continue;
        if (std::find(sent.begin(), sent.end(), &tg) != sent.end()) continue;
        sent.push_back(&tg);
        if (const Task* c = CredTask(tg); c != nullptr && MaySignal(o, *c)) {
          k.SendGroupSignal(tg, info, nullptr, SignalSender::kSandboxTask).ok();
        }
      }
    }
  }
}

// The files WatchAsync watches. Readable and writable edges go to two host
// epolls, each registration with only its own event, so that a wakeup for
// data is not taken for one for room (a socket writable all along reports
// EPOLLOUT with every readable edge) and the host's keyed wakeups reach
// only the registration they concern. Each file is registered through its
// own dup of its PollFd(): two files may share one readiness fd (the
// replicas of one pty), and the dup is what EPOLL_CTL_DEL names.
class AsyncWatches {
 public:
  static AsyncWatches& Get() {
    static auto* w = new AsyncWatches;  // never destroyed: exit paths use it
    return *w;
  }

  void Add(const FileRef& f) {
    // The file's own lock (PollFd) is never taken under mu_: a file may be
    // released (Remove takes mu_) under a socket's lock.
    int fd = DupPollFd(*f);
    if (fd < 0) return;
    std::vector<FileRef> graveyard;  // released after the lock (OnRelease takes it)
    std::lock_guard l(mu_);
    bool have = false;
    for (const auto& [id, w] : watches_) {
      // One registration per description (compared without taking a
      // reference, which could be the last).
      have |= !w.file.owner_before(f) && !f.owner_before(w.file);
    }
    if (have || !OwnEpollsLocked(graveyard)) {
      close(fd);
      return;
    }
    uint64_t id = next_id_++;
    Watch w{f, fd, false};
    if (!RegisterLocked(id, w)) return;
    watches_.emplace(id, std::move(w));
    count_.fetch_add(1);
    f->OnRelease(this, [this, id](const FileDescription*) { Remove(id); });
  }

  bool empty() const { return count_.load(std::memory_order_relaxed) == 0; }

  // The edges since the last call: each file that has O_ASYNC and the
  // reason for its signal.
  std::vector<std::pair<FileRef, int>> Take() {
    RewatchAfterFork();
    std::vector<std::pair<FileRef, int>> out;
    std::vector<FileRef> graveyard;  // released after the lock (OnRelease takes it)
    std::lock_guard l(mu_);
    if (!OwnEpollsLocked(graveyard)) return out;
    epoll_event ev[64];
    int n = epoll_wait(in_, ev, 64, 0);
    for (int i = 0; i < n; i++) {
      auto it = watches_.find(ev[i].data.u64);
      if (it == watches_.end()) continue;
      if (it->second.skip_in) {  // the state O_ASYNC came on in
        it->second.skip_in = false;
        continue;
      }
      FileRef f = it->second.file.lock();
      if (f == nullptr) continue;
      if (!(f->flags() & O_ASYNC)) {
        graveyard.push_back(std::move(f));
        continue;
      }
      // A hangup (both directions shut, a released peer) is POLL_HUP and an
      // error POLL_ERR, as the socket and tty code signal them; any other
      // readable edge is new data, a connection to accept or an event.
      int reason = (ev[i].events & EPOLLHUP) ? POLL_HUP
                   : (ev[i].events & EPOLLERR) ? POLL_ERR
                                               : POLL_IN;
      out.emplace_back(std::move(f), reason);
    }
    n = epoll_wait(out_, ev, 64, 0);
    for (int i = 0; i < n; i++) {
      auto it = watches_.find(ev[i].data.u64);
      if (it == watches_.end() || !(ev[i].events & EPOLLOUT)) continue;
      FileRef f = it->second.file.lock();
      if (f == nullptr) continue;
      if (!(f->flags() & O_ASYNC) || !f->TakeAsyncOutWanted()) {
        graveyard.push_back(std::move(f));
        continue;
      }
      out.emplace_back(std::move(f), POLL_OUT);
    }
    return out;
  }

 private:
  struct Watch {
    std::weak_ptr<FileDescription> file;
    int fd;        // our dup of the file's PollFd()
    bool skip_in;  // its first readable edge is the state it was added in
  };

  // In a sandbox fork's child: watches the files the seed watched again,
  // through their own readiness fds.
  void RewatchAfterFork() {
    std::vector<FileRef> files;
    {
      std::vector<FileRef> graveyard;
      std::lock_guard l(mu_);
      if (pid_ == getpid() && refresh_.empty()) return;
      OwnEpollsLocked(graveyard);
      files.swap(refresh_);
    }
    for (const FileRef& f : files) {
      if (f->flags() & O_ASYNC) Add(f);
    }
  }

  void Remove(uint64_t id) {
    std::lock_guard l(mu_);
    auto it = watches_.find(id);
    if (it == watches_.end()) return;
    if (pid_ == getpid()) {
      epoll_ctl(in_, EPOLL_CTL_DEL, it->second.fd, nullptr);
      epoll_ctl(out_, EPOLL_CTL_DEL, it->second.fd, nullptr);
    }
    close(it->second.fd);
    watches_.erase(it);
    count_.fetch_sub(1);
  }

  static int DupPollFd(FileDescription& f) {
    int pfd = f.PollFd();
    return pfd < 0 ? -1 : fcntl(pfd, F_DUPFD_CLOEXEC, 0);
  }

  // Registers w.fd (a dup of its file's PollFd()) as `id`; closes it if the
  // host refuses.
  bool RegisterLocked(uint64_t id, Watch& w) {
    // Registering reports what the file is now (readable, or hung up as
    // an unconnected stream socket is): that first edge is no event. The
    // caller's syscall takes it before it returns.
    pollfd p{w.fd, POLLIN | POLLRDHUP, 0};
    w.skip_in = poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR));
    epoll_event in{};
    in.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    in.data.u64 = id;
    epoll_event out{};
    out.events = EPOLLOUT | EPOLLET;
    out.data.u64 = id;
    if (epoll_ctl(in_, EPOLL_CTL_ADD, w.fd, &in) != 0 ||
        epoll_ctl(out_, EPOLL_CTL_ADD, w.fd, &out) != 0) {
      epoll_ctl(in_, EPOLL_CTL_DEL, w.fd, nullptr);
      close(w.fd);
      w.fd = -1;
      return false;
    }
    return true;
  }

  // Makes the epolls on first use, and again in a sandbox fork's child
  // (which inherited the seed's: shared with it, and watching the seed's
  // readiness fds): there every file is dropped and watched anew (through
  // the PollFd() its AdoptInForkChild made) by the next Add, or the next
  // Take, which the fork's first syscall makes.
  bool OwnEpollsLocked(std::vector<FileRef>& graveyard) {
    pid_t pid = getpid();
    if (pid == pid_) return true;
    if (in_ >= 0) close(in_);
    if (out_ >= 0) close(out_);
    for (auto& [id, w] : watches_) {
      close(w.fd);  // the child's copy of the seed's dup
      if (FileRef f = w.file.lock()) {
        f->CancelRelease(this);
        refresh_.push_back(f);
        graveyard.push_back(std::move(f));
      }
    }
    count_.fetch_sub(watches_.size());
    watches_.clear();
    in_ = epoll_create1(EPOLL_CLOEXEC);
    out_ = epoll_create1(EPOLL_CLOEXEC);
    if (in_ < 0 || out_ < 0) {
      if (in_ >= 0) close(in_);
      in_ = out_ = -1;
      pid_ = 0;
      return false;
    }
    pid_ = pid;
    return true;
  }

  std::mutex mu_;
  pid_t pid_ = 0;  // the process whose epolls in_ and out_ are
  int in_ = -1;
  int out_ = -1;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Watch> watches_;
  std::vector<FileRef> refresh_;  // a fork's child: to watch again
  std::atomic<size_t> count_{0};
};

}  // namespace

void WatchAsync(Task& t, const FileRef& f) {
  (void)t;
  if (!f->SigioFromReadiness() || !(f->flags() & O_ASYNC)) return;
  AsyncWatches::Get().Add(f);
}

void SendReadySigios(Task& t) {
  AsyncWatches& w = AsyncWatches::Get();
  if (w.empty()) return;
  for (const auto& [f, reason] : w.Take()) SendSigio(t, *f, reason);
}

Status SetFileOwner(Task& t, FileDescription& f, int type, int id) {
  if (type != F_OWNER_TID && type != F_OWNER_PID && type != F_OWNER_PGRP) return Errno(EINVAL);
  std::shared_ptr<const PidNumbers> pid;
  if (id != 0) {
    // find_vpid(): any task, process, group or session with that number in
    // the caller's pid namespace; kept as its numbers (the struct pid).
    if (id < 0) return Errno(ESRCH);
    Kernel& k = t.kernel();
    absl::MutexLock l(&k.mu());
    const int global = Kernel::IdFrom(t.pid_ns(), id);
    if (global > 0 && k.IdInUseLocked(global)) pid = k.NumbersOfLocked(global);
    if (pid == nullptr) return Errno(ESRCH);
  }
  const uid_t uid = t.creds().ruid, euid = t.creds().euid;
  f.UpdateAsyncOwner([type, &pid, uid, euid](FileDescription::AsyncOwner& o) {
    o.type = type;
    o.pid = std::move(pid);
    o.uid = uid;
    o.euid = euid;
  });
  return {};
}

Status SetFileOwnerAsSetown(Task& t, FileDescription& f, int who) {
  if (who == INT_MIN) return Errno(EINVAL);  // -who would overflow
  return SetFileOwner(t, f, who < 0 ? F_OWNER_PGRP : F_OWNER_PID, who < 0 ? -who : who);
}

void SetTtyOwnerIfUnset(Task& t, FileDescription& f, std::shared_ptr<const PidNumbers> pgrp) {
  const uid_t uid = t.creds().ruid, euid = t.creds().euid;
  std::shared_ptr<const PidNumbers> self = t.tg().pid_numbers;
  f.UpdateAsyncOwner([&](FileDescription::AsyncOwner& o) {
    if (o.pid != nullptr) return;
    o.type = pgrp != nullptr ? F_OWNER_PGRP : F_OWNER_PID;
    o.pid = pgrp != nullptr ? std::move(pgrp) : std::move(self);
    o.uid = uid;
    o.euid = euid;
  });
}

f_owner_ex FileOwnerFor(Task& t, const FileDescription& f) {
  FileDescription::AsyncOwner o = f.async_owner();
  f_owner_ex ex{static_cast<__pid_type>(o.type), 0};
  if (o.pid == nullptr) return ex;
  Kernel& k = t.kernel();
  absl::MutexLock l(&k.mu());
  // f_getown_ex(): pid_vnr() of the struct pid, while pid_task() finds
  // what it names.
  if (OwnerExistsLocked(k, o)) ex.pid = PidNumbers::In(o.pid.get(), t.pid_ns());
  return ex;
}

int FileOwnerForGetown(Task& t, const FileDescription& f) {
  f_owner_ex ex = FileOwnerFor(t, f);
  return ex.type == F_OWNER_PGRP ? -ex.pid : ex.pid;
}

namespace {

// send_sigio(): the F_SETSIG signal with si_fd `fd` and the reason's band,
// or plain SIGIO.
void SendOwnerSignal(Kernel& k, const FileDescription::AsyncOwner& o, int reason, int fd) {
  siginfo_t info{};
  if (o.sig != 0) {
    info.si_signo = o.sig;
    info.si_code = reason;
    info.si_band = BandOf(reason);
    info.si_fd = fd;
  } else {
    info.si_signo = SIGIO;
    info.si_code = SI_KERNEL;  // SEND_SIG_PRIV
  }
  SignalOwner(k, o, info);
}

}  // namespace

void SendSigio(Task& t, FileDescription& f, int reason) {
  if (!(f.flags() & O_ASYNC)) return;
  FileDescription::AsyncOwner o = f.async_owner();
  // No owner, or O_ASYNC came with open(2), which registers no fasync entry.
  if (o.pid == nullptr || o.fd < 0) return;
  SendOwnerSignal(t.kernel(), o, reason, o.fd);
}

void SendSigioMsg(Kernel& k, FileDescription& f, int fd) {
  FileDescription::AsyncOwner o = f.async_owner();
  if (o.pid == nullptr) return;
  SendOwnerSignal(k, o, POLL_MSG, fd);
}

void SendSigurg(Task& t, FileDescription& f) {
  FileDescription::AsyncOwner o = f.async_owner();
  if (o.pid == nullptr) return;
  siginfo_t info{};
  info.si_signo = SIGURG;
  info.si_code = SI_KERNEL;  // SEND_SIG_PRIV
  SignalOwner(t.kernel(), o, info);
  SendSigio(t, f, POLL_PRI);
}

}  // namespace seedvisor::sentry
