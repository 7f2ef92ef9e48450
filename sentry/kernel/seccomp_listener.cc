#include "sentry/kernel/seccomp_listener.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {
namespace {

// Newer than our uapi headers (Linux 6.6).
constexpr unsigned long kIoctlSetFlags = SECCOMP_IOW(4, __u64);
constexpr uint64_t kSyncWakeUp = 1;  // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
// The direction Linux 5.0-5.8 gave ID_VALID; still accepted.
constexpr unsigned long kIoctlIdValidWrongDir = SECCOMP_IOR(2, __u64);
constexpr size_t kAddFdSizeVer0 = 24;  // SECCOMP_NOTIFY_ADDFD_SIZE_VER0
static_assert(sizeof(seccomp_notif_addfd) == kAddFdSizeVer0);

// RLIMIT_NOFILE as an fd table bound (FdLimit() in sentry/syscalls).
int NofileLimit(Task& t) {
  absl::MutexLock l(&t.kernel().mu());
  rlim_t cur = t.tg().rlimits[RLIMIT_NOFILE].rlim_cur;
  if (cur == 0 || cur > (1u << 20)) return 1024;
  return static_cast<int>(cur);
}

}  // namespace

Result<std::shared_ptr<SeccompListener>> SeccompListener::Create(bool wait_killable_recv) {
  SV_ASSIGN_OR_RETURN(std::unique_ptr<Readiness> r, Readiness::Create());
  r->Set(/*in=*/false, /*out=*/false);
  std::shared_ptr<SeccompListener> l(new SeccompListener(std::move(r), wait_killable_recv));
  // Linux starts each listener's ids at a random number (init_listener()),
  // so that a supervisor cannot guess another listener's ids.
  std::random_device rd;
  l->next_id_ = (static_cast<uint64_t>(rd()) << 32) | rd();
  return l;
}

SeccompListener::~SeccompListener() {
  if (int fd = hup_fd_.load(); fd >= 0) close(fd);
}

bool SeccompListener::attached() const {
  std::lock_guard l(mu_);
  return !detached_;
}

SeccompNotifyResult SeccompListener::Notify(Task& t, const seccomp_data& d,
                                            const std::function<Status()>& block_killable) {
  Notif n;
  n.tid = t.tid();
  n.data = d;
  std::unique_lock l(mu_);
  if (detached_) return {SeccompNotifyResult::Kind::kReturn, -ENOSYS};
  n.id = next_id_++;
  notifs_.push_back(&n);
  receivers_.NotifyAll();
  UpdateReadinessLocked();
  // Until answered (an ADDFD with SEND answers once its fd is in), the
  // listener closed (Detach() answers ENOSYS), or a signal. An ADDFD
  // queued before we look at signals is installed first: Linux's target
  // takes a completed wait over a pending signal too.
  bool interrupted = false;
  for (;;) {
    if (!n.addfds.empty()) {
      AddFdReq* a = n.addfds.front();
      n.addfds.pop_front();
      a->taken = true;
      // Outside mu_: replacing an fd may release a file whose release
      // takes it (this listener's own file, say).
      l.unlock();
      Result<int> fd = InstallAddFd(t, *a);
      l.lock();
      a->ret = fd;
      if (a->send) {
        if (fd.ok()) {
          n.error = 0;
          n.val = *fd;
          n.flags = 0;
        } else {
          n.state = State::kSent;  // not answered after all
        }
      }
      a->done = true;
      a->finished.NotifyAll();
      UpdateReadinessLocked();
      continue;
    }
    if (n.state == State::kReplied) break;
    // should_sleep_killable(): received, with WAIT_KILLABLE_RECV.
    const bool killable = wait_killable_recv_ && n.state != State::kInit;
    Status s;
    if (killable) {
      n.answered.Add(&t);
      l.unlock();
      s = block_killable();
      l.lock();
      n.answered.Remove(&t);
    } else {
      s = WaitOn(n.answered, t, l);
    }
    if (s.ok()) continue;
    // A signal during an interruptible wait that the supervisor's RECV
    // has meanwhile made killable waits on (seccomp_do_user_notification()).
    if (!killable && wait_killable_recv_ && n.state != State::kInit) {
      l.unlock();  // FatalSignalPending takes Kernel::mu(), never under ours
      const bool stop = t.FatalSignalPending() || t.kernel().park_requested();
      l.lock();
      if (!stop && n.state != State::kInit) continue;
    }
    // Whatever came after we saw the signal is not taken: an answer is
    // dropped and queued ADDFDs fail (Linux's `interrupted:` path).
    interrupted = true;
    break;
  }
  // The ADDFDs the target never got to fail: nothing of theirs is installed.
  for (AddFdReq* a : n.addfds) {
    a->ret = Errno(ESRCH);
    a->done = true;
    a->finished.NotifyAll();
  }
  n.addfds.clear();
  notifs_.remove(&n);
  UpdateReadinessLocked();
  if (interrupted) {
    // Withdrawn: the syscall restarts and is filtered, and notified, anew.
    return {SeccompNotifyResult::Kind::kRestart, 0};
  }
  if (n.flags & SECCOMP_USER_NOTIF_FLAG_CONTINUE) return {SeccompNotifyResult::Kind::kContinue, 0};
  return {SeccompNotifyResult::Kind::kReturn, n.error != 0 ? n.error : n.val};
}

Result<int> SeccompListener::InstallAddFd(Task& t, const AddFdReq& a) {
  const int limit = NofileLimit(t);
  if (!a.setfd) return t.fds().Install(a.file, a.cloexec, 0, limit);
  // receive_fd_replace(): the number must be in range; dup3 semantics.
  if (a.newfd >= limit) return Errno(EBADF);
  SV_TRY(t.fds().InstallAt(a.newfd, a.file, a.cloexec, limit));
  return a.newfd;
}

Result<int> SeccompListener::MakeHangupFd() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Errno(errno);
  close(p[1]);
  return p[0];
}

void SeccompListener::Detach() {
  std::lock_guard l(mu_);
  detached_ = true;
  for (Notif* n : notifs_) {
    if (n->state == State::kReplied) continue;
    n->state = State::kReplied;
    n->error = -ENOSYS;
    n->val = 0;
    n->flags = 0;
    n->answered.NotifyAll();
  }
  receivers_.NotifyAll();
}

void SeccompListener::FilterGone() {
  std::lock_guard l(mu_);
  // No task is left to notify, so nothing is queued: seccomp_notify_poll()
  // then shows EPOLLHUP alone. poll_fd() is the hung-up pipe from now on;
  // the Readiness hangs up too, which wakes a poll blocked on it (it then
  // looks again, at the pipe) and moves an epoll registration of it to the
  // pipe (EpollFile::FollowMovedPollFds).
  if (hup_fd_.load() < 0) {
    if (Result<int> fd = MakeHangupFd(); fd.ok()) hup_fd_.store(*fd, std::memory_order_release);
  }
  ready_->Set(/*in=*/false, /*out=*/false);
  ready_->Hangup();
}

Status SeccompListener::RecreateInForkChild() {
  std::lock_guard l(mu_);
  if (int fd = hup_fd_.load(); fd >= 0) {
    // Ours, not the seed's (it holds no state, but nothing is shared).
    SV_ASSIGN_OR_RETURN(int fresh, MakeHangupFd());
    const int r = dup3(fresh, fd, O_CLOEXEC);
    const int err = errno;
    close(fresh);
    if (r < 0) return Errno(err);
  }
  return ready_->RecreateInForkChild();
}

SeccompListener::Notif* SeccompListener::FindLocked(uint64_t id) {
  for (Notif* n : notifs_) {
    if (n->id == id) return n;
  }
  return nullptr;
}

void SeccompListener::UpdateReadinessLocked() {
  bool in = false, out = false;
  for (Notif* n : notifs_) {
    in |= n->state == State::kInit;
    out |= n->state == State::kSent;
  }
  ready_->Set(in, out);
}

Result<long> SeccompListener::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  switch (cmd) {
    case SECCOMP_IOCTL_NOTIF_RECV:
      return Recv(t, arg);
    case SECCOMP_IOCTL_NOTIF_SEND:
      return Send(t, arg);
    case SECCOMP_IOCTL_NOTIF_ID_VALID:
    case kIoctlIdValidWrongDir:
      return IdValid(t, arg);
    case kIoctlSetFlags: {
      // The flag only asks the scheduler to run the target on the
      // supervisor's CPU; every answer here wakes its task at once.
      if (arg.value() & ~kSyncWakeUp) return Errno(EINVAL);
      std::lock_guard l(mu_);
      sync_wake_ = arg.value() != 0;
      return 0;
    }
    default:
      break;
  }
  // ADDFD's struct may grow: its size is in the command (EA_IOCTL()).
  constexpr unsigned long kSizeBits = static_cast<unsigned long>(_IOC_SIZEMASK) << _IOC_SIZESHIFT;
  if ((cmd & ~kSizeBits) == (SECCOMP_IOCTL_NOTIF_ADDFD & ~kSizeBits)) {
    return AddFd(t, arg, _IOC_SIZE(cmd));
  }
  return Errno(EINVAL);
}

// seccomp_notify_recv(): the oldest notification not yet received.
Result<long> SeccompListener::Recv(Task& t, UserAddr arg) {
  seccomp_notif in;
  SV_TRY(t.CopyInObj(arg, &in));
  static const seccomp_notif kZero{};
  if (std::memcmp(&in, &kZero, sizeof(in)) != 0) return Errno(EINVAL);
  seccomp_notif out{};
  int tid;
  {
    std::unique_lock l(mu_);
    Notif* n = nullptr;
    for (;;) {
      for (Notif* c : notifs_) {
        if (c->state == State::kInit) {
          n = c;
          break;
        }
      }
      if (n != nullptr) break;
      if (Status s = WaitOn(receivers_, t, l); !s.ok()) {
        // down_interruptible(): EINTR, not a restart, unless only a
        // sandbox quiesce interrupted us.
        return Errno(TaskParkInterrupted(t) ? kERESTARTNOINTR : EINTR);
      }
    }
    n->state = State::kSent;
    UpdateReadinessLocked();
    out.id = n->id;
    out.data = n->data;
    tid = n->tid;
  }
  {
    // task_pid_vnr(): the target as the supervisor's pid namespace sees
    // it, 0 if it is outside.
    absl::MutexLock l(&t.kernel().mu());
    out.pid = static_cast<uint32_t>(Kernel::IdIn(t.pid_ns(), tid));
  }
  if (Status s = t.CopyOutObj(arg, out); !s.ok()) {
    // The notification goes back to be received again, if still there.
    std::lock_guard l(mu_);
    if (Notif* n = FindLocked(out.id); n != nullptr && n->state == State::kSent) {
      n->state = State::kInit;
      receivers_.NotifyAll();
      UpdateReadinessLocked();
    }
    return s.error();
  }
  return 0;
}

// seccomp_notify_send().
Result<long> SeccompListener::Send(Task& t, UserAddr arg) {
  seccomp_notif_resp resp;
  SV_TRY(t.CopyInObj(arg, &resp));
  if (resp.flags & ~SECCOMP_USER_NOTIF_FLAG_CONTINUE) return Errno(EINVAL);
  if ((resp.flags & SECCOMP_USER_NOTIF_FLAG_CONTINUE) && (resp.error != 0 || resp.val != 0)) {
    return Errno(EINVAL);
  }
  std::lock_guard l(mu_);
  Notif* n = FindLocked(resp.id);
  if (n == nullptr) return Errno(ENOENT);
  if (n->state != State::kSent) return Errno(EINPROGRESS);  // not received yet, or answered
  n->state = State::kReplied;
  n->error = resp.error;
  n->val = resp.val;
  n->flags = resp.flags;
  n->answered.NotifyAll();
  UpdateReadinessLocked();
  return 0;
}

// seccomp_notify_id_valid(): received and still waiting for its answer.
Result<long> SeccompListener::IdValid(Task& t, UserAddr arg) {
  uint64_t id;
  SV_TRY(t.CopyInObj(arg, &id));
  std::lock_guard l(mu_);
  Notif* n = FindLocked(id);
  if (n == nullptr || n->state != State::kSent) return Errno(ENOENT);
  return 0;
}

// seccomp_notify_addfd(): the request waits on its notification until the
// target installs the file (or withdraws: ESRCH).
Result<long> SeccompListener::AddFd(Task& t, UserAddr arg, size_t size) {
  if (size < kAddFdSizeVer0 || size > 4096) return Errno(EINVAL);
  seccomp_notif_addfd a;
  SV_TRY(t.CopyInObj(arg, &a));
  // copy_struct_from_user(): a larger struct's tail must be zero.
  for (size_t off = sizeof(a); off < size; ++off) {
    uint8_t b;
    SV_TRY(t.CopyInObj(arg + off, &b));
    if (b != 0) return Errno(E2BIG);
  }
  if (a.flags & ~(SECCOMP_ADDFD_FLAG_SETFD | SECCOMP_ADDFD_FLAG_SEND)) return Errno(EINVAL);
  if (a.newfd_flags & ~O_CLOEXEC) return Errno(EINVAL);
  if (!(a.flags & SECCOMP_ADDFD_FLAG_SETFD) && a.newfd != 0) return Errno(EINVAL);
  AddFdReq req;
  SV_ASSIGN_OR_RETURN(req.file, t.fds().Get(static_cast<int>(a.srcfd)));
  req.setfd = (a.flags & SECCOMP_ADDFD_FLAG_SETFD) != 0;
  // An fd number past INT_MAX is past any RLIMIT_NOFILE: EBADF.
  req.newfd = a.newfd > static_cast<uint32_t>(INT32_MAX) ? INT32_MAX : static_cast<int>(a.newfd);
  req.cloexec = (a.newfd_flags & O_CLOEXEC) != 0;
  req.send = (a.flags & SECCOMP_ADDFD_FLAG_SEND) != 0;
  std::unique_lock l(mu_);
  Notif* n = FindLocked(a.id);
  if (n == nullptr) return Errno(ENOENT);
  if (n->state != State::kSent) return Errno(EINPROGRESS);
  if (req.send) {
    // SEND answers the call: only once, and only alone.
    if (!n->addfds.empty()) return Errno(EBUSY);
    n->state = State::kReplied;
  }
  n->addfds.push_back(&req);
  n->answered.NotifyAll();
  UpdateReadinessLocked();
  while (!req.done) {
    if (WaitOn(req.finished, t, l).ok() || req.done) continue;
    if (req.taken) {
      // The target is installing it right now, outside mu_: its answer
      // is moments away, and `req` must live until then.
      l.unlock();
      std::this_thread::yield();
      l.lock();
      continue;
    }
    // Still queued, so `n` is still there: take it back
    // (wait_for_completion_interruptible()'s -ERESTARTSYS).
    n->addfds.remove(&req);
    if (req.send) n->state = State::kSent;  // the answer it was did not come
    UpdateReadinessLocked();
    return Errno(TaskParkInterrupted(t) ? kERESTARTNOINTR : kERESTARTSYS);
  }
  if (!req.ret.ok()) return req.ret.error();
  return *req.ret;
}

SeccompListenerFile::SeccompListenerFile(std::shared_ptr<SeccompListener> l)
    : FileDescription(O_RDWR), listener_(std::move(l)) {}

SeccompListenerFile::~SeccompListenerFile() { listener_->Detach(); }

Result<struct stat> SeccompListenerFile::Stat() {
  struct stat st {};
  st.st_mode = 0600;  // an anonymous inode has no file type bits
  st.st_nlink = 1;
  st.st_blksize = 4096;
  st.st_dev = 0xd;  // anon_inodefs
  return st;
}

absl::Status SeccompListenerFile::AdoptInForkChild(ForkFileContext&) {
  // The seed keeps its readiness socketpair; the fork makes its own.
  if (Status s = listener_->RecreateInForkChild(); !s.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("anon_inode:seccomp notify: socketpair: ", strerror(s.error().value())));
  }
  return absl::OkStatus();
}

}  // namespace seedvisor::sentry
