#include "sentry/fs/devpts/pty.h"

#include <fcntl.h>
#include <signal.h>
#include <time.h>

#include <algorithm>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pid_namespace.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {

Result<std::shared_ptr<Pty>> Pty::Create(int index, Kernel* kernel) {
  SV_ASSIGN_OR_RETURN(auto m, Readiness::Create());
  SV_ASSIGN_OR_RETURN(auto r, Readiness::Create());
  std::shared_ptr<Pty> p(new Pty(index, kernel, std::move(m), std::move(r)));
  std::lock_guard l(p->mu_);
  p->Changed();
  return p;
}

Pty::Pty(int index, Kernel* kernel, std::unique_ptr<Readiness> m, std::unique_ptr<Readiness> r)
    : index_(index), kernel_(kernel), master_ready_(std::move(m)), replica_ready_(std::move(r)) {}

void Pty::Changed() {
  bool other_closed = replica_opened_ && replicas_ == 0;
  // The master reads what the replica wrote, or EIO once the replica's
  // last file closed (n_tty_read() with TTY_OTHER_CLOSED): both are POLLIN.
  master_ready_->Set(ld_.OutputQueued() > 0 || other_closed, ld_.InputRoom());
  if (hung_up_) {
    replica_ready_->Hangup();
  } else {
    replica_ready_->Set(ld_.ReplicaReadable(), ld_.OutputRoom());
  }
  for (Task* w : waiters_) w->Notify();
}

Status Pty::Wait(Task& t, std::unique_lock<std::mutex>& l, const timespec* deadline) {
  waiters_.push_back(&t);
  l.unlock();
  Status s = t.Block(deadline);
  l.lock();
  waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &t));
  return s;
}

bool Pty::locked() {
  std::lock_guard l(mu_);
  return locked_;
}

void Pty::set_locked(bool v) {
  std::lock_guard l(mu_);
  locked_ = v;
}

bool Pty::ControlsSession(const PidNumbers* sid) {
  std::lock_guard l(mu_);
  return sid != nullptr && session_.get() == sid;
}

std::shared_ptr<const PidNumbers> Pty::foreground_pgrp() {
  std::lock_guard l(mu_);
  return fg_pgrp_;
}

Result<size_t> Pty::Read(Task& t, bool master, char* buf, size_t len, bool nonblock) {
  std::unique_lock l(mu_);
  if (!master) return ReadReplicaLocked(t, l, buf, len, nonblock);
  for (;;) {
    if (ld_.OutputQueued() > 0) {
      size_t n = ld_.ReadOutput(buf, len);
      Changed();
      return n;
    }
    if (replica_opened_ && replicas_ == 0) return Errno(EIO);
    if (nonblock) return Errno(EAGAIN);
    SV_TRY(Wait(t, l));
  }
}

namespace {

timespec VtimeDeadline(int deciseconds) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  int64_t ns = ts.tv_nsec + int64_t{deciseconds} * 100000000;
  ts.tv_sec += ns / 1000000000;
  ts.tv_nsec = ns % 1000000000;
  return ts;
}

}  // namespace

// n_tty_read(): canonical mode returns a line; otherwise VMIN and VTIME
// (termios(3), "Canonical and noncanonical mode") decide how long to wait.
Result<size_t> Pty::ReadReplicaLocked(Task& t, std::unique_lock<std::mutex>& l, char* buf,
                                      size_t len, bool nonblock) {
  for (;;) {
    if (hung_up_) return size_t{0};  // hung_up_tty_read()
    if (ld_.termios().c_lflag & ICANON) {
      if (auto n = ld_.ReadInput(buf, len)) {
        Changed();
        return *n;
      }
      if (nonblock) return Errno(EAGAIN);
      SV_TRY(Wait(t, l));
      continue;
    }
    size_t vmin = ld_.termios().c_cc[VMIN], vtime = ld_.termios().c_cc[VTIME];
    size_t need = std::max<size_t>(1, std::min(vmin, len));
    size_t avail = ld_.InputReadable();
    bool timed_out = false;
    if (avail < need && !(vmin == 0 && vtime == 0)) {
      if (nonblock) {
        if (avail == 0) return Errno(EAGAIN);
      } else {
        // VTIME is a total timeout when VMIN is 0, and an inter-byte one
        // (started by the first byte) otherwise.
        timespec dl{};
        bool timed = vtime > 0 && (vmin == 0 || avail > 0);
        if (timed) dl = VtimeDeadline(static_cast<int>(vtime));
        Status s = Wait(t, l, timed ? &dl : nullptr);
        if (!s.ok()) {
          if (s.error() != Errno(ETIMEDOUT)) return s.error();
          timed_out = true;
        }
        if (!timed_out) continue;
      }
    }
    size_t n = *ld_.ReadInput(buf, len);
    Changed();
    return n;
  }
}

Result<size_t> Pty::Write(Task& t, bool master, const char* buf, size_t len, bool nonblock) {
  std::unique_lock l(mu_);
  size_t done = 0;
  for (;;) {
    if (!master && hung_up_) return Errno(EIO);  // hung_up_tty_write()
    std::vector<int> signals;
    size_t n = master ? ld_.Input(buf + done, len - done, &signals)
                      : ld_.Output(buf + done, len - done);
    done += n;
    if (n > 0 || !signals.empty()) Changed();
    if (!signals.empty()) {
      l.unlock();
      for (int sig : signals) SignalForeground(sig);
      l.lock();
    }
    if (done == len) return done;
    if (nonblock) {
      if (done > 0) return done;
      return Errno(EAGAIN);
    }
    Status s = Wait(t, l);
    if (!s.ok()) {
      if (done > 0) return done;
      return s.error();
    }
  }
}

bool SessionAlive(Kernel& k, const PidNumbers& sid) {
  if (k.NumbersOfLocked(sid.global()).get() != &sid) return false;  // its id was freed
  for (auto& task : k.Tasks()) {
    if (task->tg().sid == sid.global()) return true;
  }
  return false;
}

Status Pty::ReplicaOpening(Task* t, int flags) {
  if (t == nullptr || (flags & O_NOCTTY)) {
    std::lock_guard l(mu_);
    return CountReplicaLocked();
  }
  // Kernel::mu() first (lock order), for the caller's session.
  Kernel& k = t->kernel();
  absl::MutexLock kl(&k.mu());
  std::lock_guard l(mu_);
  SV_TRY(CountReplicaLocked());
  int sid = t->tg().sid;
  // Session leaders only; a terminal whose session has ended (its processes
  // all gone: no disassociate_ctty() ran here) is free again.
  if (sid == t->tgid() && (session_ == nullptr || !SessionAlive(k, *session_))) {
    session_ = k.NumbersOfLocked(sid);
    fg_pgrp_ = k.NumbersOfLocked(t->tg().pgid);
  }
  return {};
}

Status Pty::CountReplicaLocked() {
  if (locked_ || hung_up_) return Errno(EIO);
  replicas_++;
  replica_opened_ = true;
  Changed();
  return {};
}

void Pty::ReplicaClosed() {
  std::lock_guard l(mu_);
  replicas_--;
  Changed();
}

void Pty::MasterClosed() {
  std::shared_ptr<const PidNumbers> session;
  {
    std::lock_guard l(mu_);
    hung_up_ = true;
    ld_.FlushInput();
    session = std::move(session_);
    session_ = nullptr;
    fg_pgrp_ = nullptr;
    Changed();
  }
  if (session != nullptr && kernel_ != nullptr) {
    absl::MutexLock kl(&kernel_->mu());
    // Its leader, if that is still the process that made it.
    auto tg = kernel_->ThreadGroupByTgid(session->global());
    if (tg && tg->pid_numbers == session && tg->state == ThreadGroup::State::kAlive &&
        tg->sid == session->global()) {
      for (int sig : {SIGHUP, SIGCONT}) {
        siginfo_t info{};
        info.si_signo = sig;
        info.si_code = SI_KERNEL;
        (void)kernel_->SendGroupSignal(*tg, info);
      }
    }
  }
}

void Pty::SignalForeground(int sig) {
  std::shared_ptr<const PidNumbers> pgrp = foreground_pgrp();
  if (pgrp != nullptr) SignalGroup(*pgrp, sig);
}

void Pty::SignalGroup(const PidNumbers& pgrp, int sig) {
  if (kernel_ == nullptr) return;
  absl::MutexLock kl(&kernel_->mu());
  SignalGroupLocked(*kernel_, pgrp, sig);
}

void Pty::SignalGroupLocked(Kernel& k, const PidNumbers& pgrp, int sig) {
  // kill_pgrp() of tty->pgrp: nobody once the id is free or another's.
  if (k.NumbersOfLocked(pgrp.global()).get() != &pgrp) return;
  const int pgid = pgrp.global();
  std::vector<ThreadGroup*> targets;
  for (auto& task : k.Tasks()) {
    ThreadGroup& tg = task->tg();
    if (tg.pgid != pgid || std::find(targets.begin(), targets.end(), &tg) != targets.end()) continue;
    targets.push_back(&tg);
  }
  for (ThreadGroup* tg : targets) {
    siginfo_t info{};
    info.si_signo = sig;
    info.si_code = SI_KERNEL;
    (void)k.SendGroupSignal(*tg, info);
  }
}

void Pty::SessionLeaderExitedLocked(Kernel& k, const PidNumbers& session) {
  std::shared_ptr<const PidNumbers> pgrp;
  {
    std::lock_guard l(mu_);
    if (session_.get() != &session) return;
    pgrp = std::move(fg_pgrp_);
    session_ = nullptr;
    fg_pgrp_ = nullptr;
  }
  // A pty's foreground group hears SIGHUP (no SIGCONT: on_exit), also when
  // the leader was in it.
  if (pgrp != nullptr) SignalGroupLocked(k, *pgrp, SIGHUP);
}

}  // namespace seedvisor::sentry
