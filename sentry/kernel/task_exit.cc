// exit(2), exit_group(2), and what happens when a thread or process ends.
#include <algorithm>

#include "sentry/kernel/futex.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/vfs/fs_context.h"

namespace seedvisor::sentry {

void Task::ExitThread(int code) {
  absl::MutexLock l(&kernel_.mu());
  exit_requested_ = true;
  exit_code_ = code;
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

void Task::ExitTask() {
  // CLONE_CHILD_CLEARTID: zero the tid word and wake a joiner
  // (mm_release() in kernel/fork.c).
  if (!clear_child_tid_.IsNull() && mm_ != nullptr) {
    uint32_t zero = 0;
    if (mm_->CopyOut(clear_child_tid_, &zero, sizeof(zero)).ok()) {
      kernel_.futex().Wake(mm_.get(), clear_child_tid_, 1, ~0u);
    }
  }
  int64_t cpu = mm_ && mm_.use_count() == 1 ? mm_->address_space().CpuTimeNs() : 0;
  ctx_.reset();  // the stub thread detaches and ends
  mm_.reset();
  fds_.reset();
  fs_.reset();

  std::shared_ptr<Task> keep = shared_from_this();  // live until we return
  std::shared_ptr<Task> vfork_parent;
  absl::MutexLock l(&kernel_.mu());
  exited_ = true;
  tg_->cpu_ns += cpu;
  auto& tasks = tg_->tasks;
  tasks.erase(std::remove(tasks.begin(), tasks.end(), this), tasks.end());
  if (tg_->leader == this) tg_->leader = nullptr;
  if (vfork_parent_) {
    vfork_done_ = true;
    vfork_parent_->Notify();
    vfork_parent = std::move(vfork_parent_);
  }
  if (tasks.empty()) {
    ThreadGroup& tg = *tg_;
    if (!tg.group_exiting) tg.exit_status = (exit_code_ & 0xff) << 8;
    tg.group_exiting = true;
    tg.state = ThreadGroup::State::kZombie;
    // Orphans go to init (or the nearest child subreaper).
    std::shared_ptr<ThreadGroup> reaper = kernel_.init_tg();
    for (auto p = tg.parent.lock(); p; p = p->parent.lock()) {
      if (p->child_subreaper && p->state == ThreadGroup::State::kAlive) {
        reaper = p;
        break;
      }
    }
    if (reaper.get() != &tg && reaper) {
      for (auto& c : tg.children) {
        c->parent = reaper;
        // An orphan tells its new parent with SIGCHLD, whatever clone()
        // asked for: "We don't want people slaying init" (reparent_leader()).
        c->exit_signal = SIGCHLD;
        reaper->children.push_back(c);
        if (c->state == ThreadGroup::State::kZombie) kernel_.NotifyParent(*c);
      }
      tg.children.clear();
    }
    if (&tg == kernel_.init_tg().get()) {
      kernel_.InitExited(tg.exit_status);
    } else if (auto parent = tg.parent.lock()) {
      const KernelSigaction& act = parent->handlers->actions[SIGCHLD];
      bool autoreap = tg.exit_signal == SIGCHLD &&
                      (act.handler == reinterpret_cast<uint64_t>(SIG_IGN) ||
                       (act.flags & SA_NOCLDWAIT));
      if (autoreap) {
        // waitpid(2): with SIGCHLD ignored, children leave no zombie.
        tg.state = ThreadGroup::State::kReaped;
        auto& ch = parent->children;
        ch.erase(std::remove_if(ch.begin(), ch.end(),
                                [&](const std::shared_ptr<ThreadGroup>& c) { return c.get() == &tg; }),
                 ch.end());
        for (Task* t : parent->tasks) t->Notify();
      } else {
        kernel_.NotifyParent(tg);
      }
    }
  }
  kernel_.UnregisterTask(tid_);
}

}  // namespace seedvisor::sentry
