// ioprio_get/ioprio_set (block/ioprio.c). The value is a thread's, 0
// (IOPRIO_CLASS_NONE) until set, inherited by clone; what a group or user
// query reports for a NONE thread is its nice-derived priority
// (__get_task_ioprio()).
#include "sentry/syscalls/sys_ioprio.h"

#include <linux/capability.h>
#include <sched.h>

#include <algorithm>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {

namespace {

// include/uapi/linux/ioprio.h
constexpr int kClassShift = 13;
constexpr int kClassNone = 0, kClassRt = 1, kClassBe = 2, kClassIdle = 3;
constexpr int kWhoProcess = 1, kWhoPgrp = 2, kWhoUser = 3;
constexpr int kNrLevels = 8;

constexpr int Class(int ioprio) { return (ioprio >> kClassShift) & 7; }
constexpr int Level(int ioprio) { return ioprio & (kNrLevels - 1); }
constexpr int Value(int cls, int level) { return (cls << kClassShift) | level; }
constexpr int kDefault = Value(kClassBe, 4);  // IOPRIO_DEFAULT

// __get_task_ioprio(): NONE reads as the class and level the thread's
// scheduling gives it (task_nice_ioclass(), task_nice_ioprio()).
int EffectiveIoprio(Task& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(task.kernel().mu()) {
  if (Class(task.ioprio_) != kClassNone) return task.ioprio_;
  int cls = kClassBe;
  if (task.sched_.policy == SCHED_IDLE) {
    cls = kClassIdle;
  } else if (task.sched_.policy == SCHED_FIFO || task.sched_.policy == SCHED_RR ||
             task.sched_.policy == SCHED_DEADLINE) {
    cls = kClassRt;
  }
  return Value(cls, (task.tg().nice + 20) / 5);
}

// ioprio_best(): NONE counts as the default; the lower value wins.
int Best(int a, int b) {
  if (Class(a) == kClassNone) a = kDefault;
  if (Class(b) == kClassNone) b = kDefault;
  return std::min(a, b);
}

// The threads (which, who) names, in the caller's pid namespace; EINVAL
// for an unknown `which`.
Result<std::vector<Task*>> Targets(Task& t, int which, int who)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(t.kernel().mu()) {
  std::vector<Task*> out;
  if (which != kWhoProcess && which != kWhoPgrp && which != kWhoUser) return Errno(EINVAL);
  if (which == kWhoProcess && who == 0) return std::vector<Task*>{&t};
  if (which != kWhoUser && who != 0 && (who = Kernel::IdFrom(t.pid_ns(), who)) == 0) return out;
  for (auto& task : t.kernel().Tasks()) {
    switch (which) {
      case kWhoProcess:
        if (task->tid() == who) out.push_back(task.get());
        break;
      case kWhoPgrp:
        if (task->tg().pgid == (who == 0 ? t.tg().pgid : who)) out.push_back(task.get());
        break;
      default:
        // Every thread of the user that the caller's pid namespace sees
        // (task_pid_vnr() != 0). A process group is named by an id of the
        // caller's namespace, and Linux takes each of its members
        // (do_each_pid_thread()), as here.
        if (task->creds().ruid == static_cast<uid_t>(who == 0 ? t.creds().ruid : who) &&
            Kernel::IdIn(t.pid_ns(), task->tid()) != 0) {
          out.push_back(task.get());
        }
    }
  }
  return out;
}

}  // namespace

Status IoprioCheck(Task& t, int ioprio) {
  switch (Class(ioprio)) {
    case kClassRt:
      if (!t.creds().HasCap(CAP_SYS_NICE) && !t.creds().HasCap(CAP_SYS_ADMIN)) {
        return Errno(EPERM);
      }
      return {};  // a 3-bit level is always below IOPRIO_NR_LEVELS
    case kClassBe:
    case kClassIdle: return {};
    case kClassNone: return Level(ioprio) != 0 ? Status(Errno(EINVAL)) : Status();
    default: return Errno(EINVAL);
  }
}

SyscallReturn SysIoprioGet(Task& t, const SyscallArgs& a) {
  const int which = a.Int(0);
  absl::MutexLock l(&t.kernel().mu());
  SV_ASSIGN_OR_RETURN(std::vector<Task*> targets, Targets(t, which, a.Int(1)));
  if (targets.empty()) return Errno(ESRCH);
  // A single thread reports what was set (get_task_raw_ioprio()).
  if (which == kWhoProcess) return static_cast<uint64_t>(targets[0]->ioprio_);
  int best = EffectiveIoprio(*targets[0]);
  for (Task* task : targets) best = Best(best, EffectiveIoprio(*task));
  return static_cast<uint64_t>(best);
}

SyscallReturn SysIoprioSet(Task& t, const SyscallArgs& a) {
  const int ioprio = a.Int(2);
  SV_TRY(IoprioCheck(t, ioprio));
  absl::MutexLock l(&t.kernel().mu());
  SV_ASSIGN_OR_RETURN(std::vector<Task*> targets, Targets(t, a.Int(0), a.Int(1)));
  if (targets.empty()) return Errno(ESRCH);
  for (Task* task : targets) {
    // set_task_ioprio(): another user's thread needs CAP_SYS_NICE.
    const Credentials& mine = t.creds();
    uid_t theirs = task->creds().ruid;
    if (theirs != mine.euid && theirs != mine.ruid && !mine.HasCap(CAP_SYS_NICE)) {
      return Errno(EPERM);
    }
    task->ioprio_ = ioprio;
  }
  return 0;
}

}  // namespace seedvisor::sentry
