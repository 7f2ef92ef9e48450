// exit(2), exit_group(2), and what happens when a thread or process ends.
#include <linux/futex.h>
#include <linux/ptrace.h>

#include <algorithm>

#include "sentry/ipc/ipc_namespace.h"
#include "sentry/kernel/futex.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pidfd.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_file.h"
#include "sentry/vfs/fs_context.h"

namespace seedvisor::sentry {

void Task::ExitThread(int code) {
  absl::MutexLock l(&kernel_.mu());
  exit_requested_ = true;
  exit_status_ = (code & 0xff) << 8;
}

void Task::ExitGroup(int code) {
  absl::MutexLock l(&kernel_.mu());
  if (tg_->group_exiting) return;
  tg_->group_exiting = true;
  tg_->exit_status = (code & 0xff) << 8;
  for (Task* t : tg_->tasks) {
    if (t != this) t->Interrupt();
  }
}

namespace {

// exit_robust_list() (kernel/futex/core.c): for each robust futex the dying
// thread still holds, mark the owner dead and wake one waiter, so that the
// next pthread_mutex_lock gets EOWNERDEAD instead of hanging.
void ReleaseRobustFutexes(Kernel& k, MM& mm, platform::Context& ctx, UserAddr head, int tid) {
  struct {
    uint64_t next;
    int64_t futex_offset;
    uint64_t pending;
  } h;
  if (!mm.CopyIn(head, &h, sizeof(h)).ok()) return;
  auto release = [&](uint64_t entry, bool pi, bool pending) {
    UserAddr word(entry + static_cast<uint64_t>(h.futex_offset));
    // handle_futex_death(): owner-died in one cmpxchg, so a FUTEX_WAITERS
    // that another thread sets meanwhile (its lock cmpxchg) is kept; a word
    // of another owner is left alone.
    Result<uint32_t> old = AtomicUpdateWord(
        ctx, mm, word,
        {.if_mask = FUTEX_TID_MASK, .if_value = static_cast<uint32_t>(tid),
         .and_mask = FUTEX_WAITERS, .xor_mask = FUTEX_OWNER_DIED});
    if (!old.ok()) return;
    // handle_futex_death() wakes with a shared key (glibc waits on robust
    // mutexes with shared futexes for that reason). A PI futex's waiters
    // get it from FutexTable::ExitPi instead. A pending non-PI lock whose
    // word is 0 was being released: its waiter is woken too.
    const bool ours = (*old & FUTEX_TID_MASK) == static_cast<uint32_t>(tid);
    if (!pi && ((ours && (*old & FUTEX_WAITERS)) || (pending && *old == 0))) {
      k.futex().Wake(FutexKeyFor(mm, word, false), 1, FUTEX_BITSET_MATCH_ANY);
    }
  };
  uint64_t entry = h.next & ~1ULL;  // bit 0 marks PI futexes
  bool pi = h.next & 1;
  for (int i = 0; entry != head.value() && entry != 0 && i < 2048; ++i) {  // ROBUST_LIST_LIMIT
    uint64_t next;
    if (!mm.CopyIn(UserAddr(entry), &next, sizeof(next)).ok()) break;
    if (entry != (h.pending & ~1ULL)) release(entry, pi, false);
    entry = next & ~1ULL;
    pi = next & 1;
  }
  if (h.pending & ~1ULL) release(h.pending & ~1ULL, h.pending & 1, true);
}

}  // namespace

void Task::ExitTask() {
  {
    // PTRACE_O_TRACEEXIT: stop before anything is torn down; the message is
    // the wait status the thread ends with. A killed task does not stop.
    int status;
    {
      absl::MutexLock l(&kernel_.mu());
      status = tg_->group_exiting ? tg_->exit_status : exit_status_;
    }
    if (status != SIGKILL && ctx_ != nullptr) PtraceEvent(PTRACE_EVENT_EXIT, status);
  }
  // Before anything lets another thread free the area (the tid wake
  // below): the host thread must not outlive it registered.
  DropRseq();
  // (A task that never ran, without a context, registered no list.)
  if (!robust_list_.IsNull() && mm_ != nullptr && ctx_ != nullptr) {
    ReleaseRobustFutexes(kernel_, *mm_, *ctx_, robust_list_, vtid());  // the word holds task_pid_vnr()
  }
  // exit_pi_state_list(), after the robust list as in futex_cleanup().
  kernel_.futex().ExitPi(*this);
  // CLONE_CHILD_CLEARTID: zero the tid word and wake a joiner
  // (mm_release() in kernel/fork.c).
  if (!clear_child_tid_.IsNull() && mm_ != nullptr) {
    uint32_t zero = 0;
    if (mm_->CopyOut(clear_child_tid_, &zero, sizeof(zero)).ok()) {
      // mm_release(): a shared wake (glibc's pthread_join waits shared).
      kernel_.futex().Wake(FutexKeyFor(*mm_, clear_child_tid_, false), 1, ~0u);
    }
  }
  int64_t cpu = mm_ && mm_.use_count() == 1 ? mm_->address_space().CpuTimeNs() : 0;
  // exit_mm(): setmax_mm_hiwater_rss(&signal->maxrss), for getrusage(2).
  const int64_t hwm_kb = mm_ && mm_.use_count() == 1 ? mm_->address_space().MaxRssKb() : 0;
  {
    // Under Kernel::mu() for other tasks' CPU clock reads (ThreadCpuNsLocked).
    std::unique_ptr<platform::Context> old_ctx;
    std::shared_ptr<MM> old_mm;
    {
      absl::MutexLock l(&kernel_.mu());
      old_ctx = std::move(ctx_);
      old_mm = std::move(mm_);
    }
    old_ctx.reset();  // the stub thread detaches and ends
  }
  // Under fs_mu_: other tasks read them (/proc, umount2, pivot_root).
  set_fds(nullptr);
  set_fs(nullptr);

  std::shared_ptr<Task> keep = shared_from_this();  // live until we return
  std::shared_ptr<Task> vfork_parent;
  absl::MutexLock l(&kernel_.mu());
  exited_ = true;
  if (thread_exit_event_) thread_exit_event_->Signal();  // thread pidfds poll readable
  tg_->cpu_ns += cpu;
  tg_->maxrss_kb = std::max(tg_->maxrss_kb, hwm_kb);
  tg_->sys_ns += SentryCpuNs();  // on its own thread, which is still running
  tg_->io.Add(io());  // __exit_signal()
  auto& tasks = tg_->tasks;
  tasks.erase(std::remove(tasks.begin(), tasks.end(), this), tasks.end());
  if (tg_->leader == this) tg_->leader = nullptr;
  if (vfork_parent_) {
    vfork_done_ = true;
    vfork_parent_->Notify();
    vfork_parent = std::move(vfork_parent_);
  }
  PtraceOnExit(kernel_, *this, tg_->group_exiting ? tg_->exit_status : exit_status_);
  if (!tasks.empty()) {
    // forget_original_parent() for a thread: its children pass to a live
    // thread of the process, and those that asked hear of it.
    for (auto& c : tg_->children) {
      if (c->parent_tid != tid_) continue;
      c->parent_tid = tasks.front()->tid();
      if (c->pdeath_signal && c->state == ThreadGroup::State::kAlive) {
        siginfo_t info{};
        info.si_signo = c->pdeath_signal;
        info.si_code = SI_USER;
        info.si_pid = Kernel::IdIn(c->pid_ns.get(), tg_->tgid());
        (void)kernel_.SendGroupSignal(*c, info);
      }
    }
  }
  if (tasks.empty()) {
    ThreadGroup& tg = *tg_;
    if (!tg.group_exiting) tg.exit_status = exit_status_;
    tg.group_exiting = true;
    tg.state = ThreadGroup::State::kZombie;
    tg.zombie_creds = creds_;
    kernel_.SignalExitWaitersLocked();
    tg.SignalExitEvent();  // pidfds poll readable from now on
    // Its record locks go now, before its pid can be reaped and reused.
    ReleaseProcessRecordLocks(tg.tgid());
    // And its SEM_UNDO adjustments are applied (exit_sem()).
    kernel_.ipc().sems().ExitUndo(tg.tgid(), tg.pid_numbers);
    // A session leader's terminal is its session's no more.
    kernel_.SessionLeaderExitedLocked(tg);
    // Orphans go to their namespace's init, or to the nearest child
    // subreaper above them in that namespace (find_new_reaper()); those
    // of a namespace's init to nobody: it ends the namespace, whose tasks
    // are reaped as they die (zap_pid_namespace()).
    PidNamespace* ns = tg.pid_ns.get();
    std::shared_ptr<ThreadGroup> reaper = ns != nullptr ? ns->init.lock() : kernel_.init_tg();
    if (ns != nullptr && reaper.get() == &tg) {
      kernel_.ZapPidNamespaceLocked(*ns, tg);
      for (auto& c : tg.children) {
        c->parent.reset();
        c->parent_tid = 0;
        if (c->state == ThreadGroup::State::kZombie) kernel_.ReapLocked(*c);
      }
      tg.children.clear();
      reaper = nullptr;
    } else if (reaper != nullptr && reaper->state != ThreadGroup::State::kAlive) {
      reaper = nullptr;
    }
    for (auto p = tg.parent.lock(); p && p->pid_ns.get() == ns; p = p->parent.lock()) {
      if (reaper == nullptr || p == reaper) break;
      if (p->child_subreaper && p->state == ThreadGroup::State::kAlive) {
        reaper = p;
        break;
      }
    }
    // prctl(PR_SET_PDEATHSIG): tell the children that asked.
    for (auto& c : tg.children) {
      if (c->pdeath_signal && c->state == ThreadGroup::State::kAlive) {
        siginfo_t info{};
        info.si_signo = c->pdeath_signal;
        info.si_code = SI_USER;
        info.si_pid = Kernel::IdIn(c->pid_ns.get(), tg.tgid());
        (void)kernel_.SendGroupSignal(*c, info);
      }
    }
    if (reaper == nullptr) {
      // A dying namespace's orphans: reaped once they are zombies.
      for (auto& c : tg.children) {
        c->parent.reset();
        c->parent_tid = 0;
        if (c->state == ThreadGroup::State::kZombie) kernel_.ReapLocked(*c);
      }
      tg.children.clear();
    } else if (reaper.get() != &tg) {
      for (auto& c : tg.children) {
        c->parent = reaper;
        c->parent_tid = 0;
        // An orphan tells its new parent with SIGCHLD, whatever clone()
        // asked for: "We don't want people slaying init" (reparent_leader()).
        c->exit_signal = SIGCHLD;
        reaper->children.push_back(c);
        if (c->state == ThreadGroup::State::kZombie) kernel_.NotifyParent(*c);
      }
      tg.children.clear();
    }
    // A traced leader's end is its tracer's to see first.
    if (!tg.ptrace_exit_pending) kernel_.ZombieToParent(tg);
  }
  kernel_.UnregisterTask(tid_);
}

void Kernel::ZombieToParent(ThreadGroup& tg) {
  PidNamespace* ns = tg.pid_ns.get();
  if (ns != nullptr && ns->init.lock().get() == &tg && ns->others > 0) {
    // A namespace's init: its parent hears of its end once every other
    // task of the namespace is gone (UnregisterTask).
    auto slot = tgs_.find(tg.tgid());
    if (slot != tgs_.end()) {
      ns->exit_pending = slot->second.tg.lock();
      if (ns->exit_pending.get() == &tg) return;
      ns->exit_pending = nullptr;
    }
  }
  ZombieToParentNow(tg);
}

void Kernel::ZombieToParentNow(ThreadGroup& tg) {
  if (&tg == init_tg().get()) {
    InitExited(tg.exit_status);
  } else if (auto parent = tg.parent.lock()) {
    const KernelSigaction& act = parent->handlers->actions[SIGCHLD];
    bool autoreap = tg.exit_signal == SIGCHLD &&
                    (act.handler == reinterpret_cast<uint64_t>(SIG_IGN) ||
                     (act.flags & SA_NOCLDWAIT));
    if (autoreap) {
      // waitpid(2): with SIGCHLD ignored, children leave no zombie.
      ReapLocked(tg);
      auto& ch = parent->children;
      ch.erase(std::remove_if(ch.begin(), ch.end(),
                              [&](const std::shared_ptr<ThreadGroup>& c) { return c.get() == &tg; }),
               ch.end());
      for (Task* t : parent->tasks) t->Notify();
    } else {
      NotifyParent(tg);
    }
  } else if (tg.pid_ns != nullptr && !tg.pid_ns->adding) {
    // An orphan of a namespace whose init has exited (zap_pid_namespace()
    // reaps them).
    ReapLocked(tg);
  } else {
    // A process started from outside (runsc exec): its parent is the
    // host-side waiter, which reaps it at once (runc exec's process leaves
    // the pids cgroup then), so it stops counting against the pids limit
    // now; its zombie stays here for the control server's waiters.
    ReleasePidChargeLocked(tg);
  }
}

}  // namespace seedvisor::sentry
