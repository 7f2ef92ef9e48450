// The kernel's ids: tids and thread-group ids (allocation, registration,
// reaping), process group and session ids held by unreaped thread groups,
// and each id's numbers in the pid namespaces below the sandbox's
// (alloc_pid(), attach_pid()/detach_pid() and free_pid() in Linux).
#include <signal.h>

#include <map>
#include <memory>
#include <vector>

#include "sentry/kernel/kernel.h"

namespace seedvisor::sentry {

bool Kernel::TgidFreeLocked(int tid) {
  auto it = tgs_.find(tid);
  if (it != tgs_.end()) {
    // A group's entry goes when it is reaped (ReapLocked); one whose last
    // reference went without a reap (a process no one waits for any more:
    // a control-server exec, a later container's init) frees its id here,
    // on the next look. Its own group/session ids go with it first: a
    // leader holds its tid as its pgid and sid, and checking the holders
    // before dropping them kept such an id taken for good.
    std::shared_ptr<ThreadGroup> tg = it->second.tg.lock();
    if (tg && tg->state != ThreadGroup::State::kReaped) return false;
    if (it->second.leader_charged) ChargePidsLocked(it->second.container_pids.get(), -1);
    HoldGroupIdsLocked(it->second, 0, 0);
    tgs_.erase(it);
  }
  if (group_id_users_.count(tid) != 0) return false;  // another group's pgid/sid
  ForgetIdLocked(tid);
  return true;
}

void Kernel::HoldGroupIdsLocked(TgSlot& slot, int pgid, int sid) {
  const int old_pgid = slot.held_pgid, old_sid = slot.held_sid;
  for (int id : {pgid, sid}) {
    if (id > 0) ++group_id_users_[id];
  }
  if (pgid > 0) {
    ProcessGroupUse& g = pgrps_[pgid];
    ++g.members;
    g.sid = sid;
  }
  if (auto g = pgrps_.find(old_pgid); old_pgid > 0 && g != pgrps_.end()) {
    if (--g->second.members <= 0) pgrps_.erase(g);
  }
  slot.held_pgid = pgid;
  slot.held_sid = sid;
  for (int id : {old_pgid, old_sid}) {
    if (id <= 0) continue;
    auto it = group_id_users_.find(id);
    if (it == group_id_users_.end() || --it->second > 0) continue;
    group_id_users_.erase(it);
    ForgetIdLocked(id);
  }
}

void Kernel::SetGroupIdsLocked(ThreadGroup& tg, int pgid, int sid) {
  tg.pgid = pgid;
  tg.sid = sid;
  auto it = tgs_.find(tg.tgid());
  if (it != tgs_.end() && it->second.tg.lock().get() == &tg) {
    HoldGroupIdsLocked(it->second, pgid, sid);
  }
}

int Kernel::ProcessGroupSessionLocked(int pgid) const {
  auto it = pgrps_.find(pgid);
  return it == pgrps_.end() ? 0 : it->second.sid;
}

bool Kernel::IdInUseLocked(int id) {
  return tasks_.count(id) != 0 || ThreadGroupByTgid(id) != nullptr ||
         group_id_users_.count(id) != 0;
}

Result<int> Kernel::ForegroundGroupLocked(const PidNamespace* ns, int local, int sid) {
  const int global = IdFrom(ns, local);
  if (global <= 0 || !IdInUseLocked(global)) return Errno(ESRCH);
  int of = ProcessGroupSessionLocked(global);
  if (of == 0) {
    // session_of_pgrp(): no group of that id, so the process's session.
    if (std::shared_ptr<Task> task = TaskByTid(global)) {
      of = task->tg().sid;
    } else if (std::shared_ptr<ThreadGroup> tg = ThreadGroupByTgid(global)) {
      of = tg->sid;
    }
  }
  if (of != sid) return Errno(EPERM);
  return global;
}

int Kernel::IdIn(const PidNamespace* ns, int global) {
  if (ns == nullptr || global <= 0) return global;
  return ns->Local(global);
}

int Kernel::IdFrom(const PidNamespace* ns, int local) {
  if (ns == nullptr || local <= 0) return local;
  return ns->Global(local);
}

Status Kernel::AttachIdsLocked(const std::shared_ptr<PidNamespace>& ns, int global, int want) {
  if (ns == nullptr) return {};
  if (!ns->adding) return Errno(ENOMEM);
  // alloc_pid(): a namespace without its init yet takes only 1 as set_tid
  // (its first process is its init, whatever it asks for).
  if (want > 1 && ns->Global(1) == 0) return Errno(EINVAL);
  std::vector<std::pair<PidNamespace*, int>> ids;
  for (PidNamespace* n = ns.get(); n != nullptr; n = n->parent().get()) {
    const int local = n->Allocate(n == ns.get() ? want : 0);
    if (local == -EEXIST) return Errno(EEXIST);
    if (local < 0) return Errno(EAGAIN);
    ids.emplace_back(n, local);
  }
  for (const auto& [n, local] : ids) n->Add(local, global);
  id_ns_[global] = ns;
  return {};
}

void Kernel::ForgetIdLocked(int global) {
  if (tasks_.count(global) != 0 || tgs_.count(global) != 0 ||
      group_id_users_.count(global) != 0) {
    return;
  }
  id_numbers_.erase(global);  // free_pid(): a later task of this id gets new numbers
  auto it = id_ns_.find(global);
  if (it == id_ns_.end()) return;
  for (PidNamespace* n = it->second.get(); n != nullptr; n = n->parent().get()) n->Remove(global);
  id_ns_.erase(it);
}

void Kernel::ZapPidNamespaceLocked(PidNamespace& ns, ThreadGroup& init) {
  ns.adding = false;
  siginfo_t info{};
  info.si_signo = SIGKILL;
  info.si_code = SI_KERNEL;
  for (auto& [tid, t] : tasks_) {
    if (&t->tg() != &init && ns.Contains(t->pid_ns())) SendGroupSignal(t->tg(), info).ok();
  }
}

int Kernel::AllocateTid() {
  for (int i = 0; i < kPidMax; ++i) {
    int tid = next_tid_;
    next_tid_ = next_tid_ >= kPidMax - 1 ? 2 : next_tid_ + 1;
    if (tasks_.count(tid) == 0 && TgidFreeLocked(tid)) {
      last_tid_ = tid;
      return tid;
    }
  }
  return -1;
}

int Kernel::LastIdIn(const PidNamespace* ns) const {
  return ns != nullptr ? ns->last_allocated() : last_tid_;
}

void Kernel::SetLastIdIn(PidNamespace* ns, int last) {
  if (ns != nullptr) {
    ns->set_last_allocated(last);
    return;
  }
  last_tid_ = last;
  next_tid_ = last + 1 >= kPidMax ? 2 : last + 1;
}

int Kernel::AllocateTidAt(int tid) {
  if (tasks_.count(tid) != 0 || !TgidFreeLocked(tid)) return -EEXIST;
  return tid;
}

void Kernel::RegisterTask(std::shared_ptr<Task> t) {
  // Its ids, as AttachIdsLocked gave them, for good (alloc_pid()).
  const std::shared_ptr<PidNamespace>& ns = t->tg().pid_ns;
  std::vector<int> numbers(static_cast<size_t>(ns != nullptr ? ns->level() + 1 : 1));
  numbers[0] = t->tid();
  for (const PidNamespace* n = ns.get(); n != nullptr; n = n->parent().get()) {
    numbers[static_cast<size_t>(n->level())] = n->Local(t->tid());
  }
  t->pid_numbers_ = std::make_shared<const PidNumbers>(ns, std::move(numbers));
  id_numbers_[t->tid()] = t->pid_numbers_;
  if (t->tid() == t->tgid()) {
    t->tg().pid_numbers = t->pid_numbers_;  // the leader's (PIDTYPE_TGID)
    TgSlot& slot = tgs_[t->tgid()] =
        TgSlot{.tg = t->shared_tg(), .container_pids = t->tg().container_pids};
    HoldGroupIdsLocked(slot, t->tg().pgid, t->tg().sid);
  }
  for (PidNamespace* n = t->pid_ns(); n != nullptr; n = n->parent().get()) {
    if (n->init.lock().get() != &t->tg()) ++n->others;
  }
  t->counted_uid_ = t->creds().ruid;
  ++tasks_per_uid_[t->counted_uid_];
  ChargePidsLocked(t->tg().container_pids.get(), 1);
  tasks_[t->tid()] = std::move(t);
}

void Kernel::UnregisterTask(int tid) {
  auto t = tasks_.find(tid);
  if (t == tasks_.end()) return;
  Task& task = *t->second;
  const uid_t uid = task.counted_uid_;
  if (--tasks_per_uid_[uid] <= 0) tasks_per_uid_.erase(uid);
  // A pids cgroup uncharges a thread at its exit and a process's leader
  // when the process is reaped (release_task()); the group's id stays taken
  // until then too (tgs_).
  auto slot = tid == task.tgid() ? tgs_.find(tid) : tgs_.end();
  if (slot != tgs_.end() && !slot->second.released &&
      slot->second.tg.lock().get() == &task.tg()) {
    slot->second.leader_charged = true;
    slot->second.exited_leader = t->second;
  } else {
    ChargePidsLocked(task.tg().container_pids.get(), -1);
  }
  std::shared_ptr<Task> keep = std::move(t->second);
  tasks_.erase(t);
  exit_cv_.SignalAll();
  ForgetIdLocked(tid);
  for (PidNamespace* n = keep->pid_ns(); n != nullptr; n = n->parent().get()) {
    if (n->init.lock().get() == &keep->tg() || --n->others > 0 || !n->exit_pending) continue;
    // The last task of a namespace whose init has exited: the init's
    // parent hears of it now (zap_pid_namespace() has waited).
    std::shared_ptr<ThreadGroup> init = std::move(n->exit_pending);
    ZombieToParentNow(*init);
  }
}

void Kernel::ReleasePidChargeLocked(ThreadGroup& tg) {
  auto it = tgs_.find(tg.tgid());
  if (it == tgs_.end() || it->second.tg.lock().get() != &tg) return;
  it->second.released = true;
  it->second.exited_leader = nullptr;
  if (it->second.leader_charged) {
    it->second.leader_charged = false;
    ChargePidsLocked(it->second.container_pids.get(), -1);
  }
}

void Kernel::ReapLocked(ThreadGroup& tg) {
  tg.state = ThreadGroup::State::kReaped;
  exit_cv_.SignalAll();
  auto it = tgs_.find(tg.tgid());
  if (it == tgs_.end() || it->second.tg.lock().get() != &tg) return;
  if (it->second.leader_charged) ChargePidsLocked(it->second.container_pids.get(), -1);
  HoldGroupIdsLocked(it->second, 0, 0);
  tgs_.erase(it);
  ForgetIdLocked(tg.tgid());
}

std::shared_ptr<Task> Kernel::TaskByTid(int tid) {
  auto it = tasks_.find(tid);
  return it == tasks_.end() ? nullptr : it->second;
}

std::shared_ptr<ThreadGroup> Kernel::ThreadGroupByTgid(int tgid) {
  auto it = tgs_.find(tgid);
  if (it == tgs_.end()) return nullptr;
  auto tg = it->second.tg.lock();
  if (tg && tg->state == ThreadGroup::State::kReaped) return nullptr;
  return tg;
}

std::vector<std::shared_ptr<Task>> Kernel::Tasks() {
  std::vector<std::shared_ptr<Task>> out;
  for (auto& [tid, t] : tasks_) out.push_back(t);
  return out;
}

std::shared_ptr<Task> Kernel::TaskOrExitedLeaderLocked(int tid) {
  if (std::shared_ptr<Task> t = TaskByTid(tid)) return t;
  auto it = tgs_.find(tid);
  std::shared_ptr<ThreadGroup> tg = ThreadGroupByTgid(tid);
  if (it == tgs_.end() || tg == nullptr) return nullptr;
  // A thread that exec'd after its leader's end leads the process now
  // (de_thread() gives it the leader's pid; ours keeps its own tid).
  if (tg->leader != nullptr) return TaskByTid(tg->leader->tid());
  return it->second.exited_leader;
}

std::vector<std::shared_ptr<Task>> Kernel::TasksAndExitedLeadersLocked() {
  std::vector<std::shared_ptr<Task>> out;
  out.reserve(tasks_.size());
  auto live = tasks_.begin();
  for (auto& [tgid, slot] : tgs_) {
    if (slot.exited_leader == nullptr) continue;
    for (; live != tasks_.end() && live->first < tgid; ++live) out.push_back(live->second);
    std::shared_ptr<ThreadGroup> tg = slot.tg.lock();
    if (tg && tg->state != ThreadGroup::State::kReaped && tg->leader == nullptr) {
      out.push_back(slot.exited_leader);
    }
  }
  for (; live != tasks_.end(); ++live) out.push_back(live->second);
  return out;
}

}  // namespace seedvisor::sentry
