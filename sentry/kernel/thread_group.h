// ThreadGroup: a guest process (the threads that share a tgid).
//
// Everything here except the constant ids is guarded by Kernel::mu(): the
// process tree, job control, group exit and shared signal state change
// together, and one lock keeps them consistent.
#ifndef SEEDVISOR_SENTRY_KERNEL_THREAD_GROUP_H_
#define SEEDVISOR_SENTRY_KERNEL_THREAD_GROUP_H_

#include <sys/resource.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sentry/kernel/credentials.h"
#include "sentry/kernel/signal_types.h"

namespace seedvisor::sentry {

class HostCgroups;
class PidNamespace;
class PidNumbers;
class Task;

// A pod's container's pids count (threads and unreaped zombies, as
// pids.current) and limit (0: none): Kernel::SetContainerPidsLimit.
struct ContainerPids {
  int64_t charged = 0;
  int64_t limit = 0;
  // Its own host cgroups, which the host process of each address space of
  // its processes joins (host_cgroups.h; null: the pod sandbox's, where the
  // sentry is): Kernel::SetContainerHostCgroupsLocked, before its first
  // process.
  std::shared_ptr<const HostCgroups> host_cgroups;
};

// /proc/PID/io's read and write counts (struct task_io_accounting): bytes
// moved by read/write-family calls and the number of those calls.
struct IoCounters {
  uint64_t rchar = 0, wchar = 0, syscr = 0, syscw = 0;
  void Add(const IoCounters& o) {
    rchar += o.rchar, wchar += o.wchar, syscr += o.syscr, syscw += o.syscw;
  }
};

class ThreadGroup {
 public:
  explicit ThreadGroup(int tgid) : tgid_(tgid) {}
  ~ThreadGroup();  // pidfd.cc
  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;
  int tgid() const { return tgid_; }
  // Its pid namespace (pid_namespace.h; null: the sandbox's own) and its
  // id there; constant once the process is made.
  std::shared_ptr<PidNamespace> pid_ns;
  int vtgid() const { return vtgid_ != 0 ? vtgid_ : tgid_; }
  void set_vtgid(int id) { vtgid_ = id; }
  // Its tgid's ids at every level (pid_namespace.h), for what keeps
  // naming the process after it is gone (SysV IPC's pids). Set when its
  // leader is registered (Kernel::RegisterTask), before the process runs;
  // constant after, so read without Kernel::mu().
  std::shared_ptr<const PidNumbers> pid_numbers;

  enum class State { kAlive, kZombie, kReaped };

  // All guarded by Kernel::mu().
  std::vector<Task*> tasks;
  Task* leader = nullptr;
  std::weak_ptr<ThreadGroup> parent;
  std::vector<std::shared_ptr<ThreadGroup>> children;
  int pgid = 0;
  int sid = 0;
  // The OCI container this process belongs to in a sandbox that holds
  // several (a pod: sentry/control's CreateContainer); "" = the sandbox's
  // first. Set by Kernel::StartProcess, inherited by fork/clone.
  std::string container_id;
  // That container's pids count and limit (null for the first container's,
  // which only the sandbox's limit binds), held for the group's life: a
  // zombie of a deleted container gives its charge back to the counter it
  // was made under, never to a later container of the same id. Set once
  // when the group is made; the counter's fields are the kernel lock's.
  std::shared_ptr<ContainerPids> container_pids;
  State state = State::kAlive;
  bool group_exiting = false;
  int exit_status = 0;       // a wait status (W*), valid once exiting
  // The credentials of its last thread, kept once it is a zombie (what
  // PIDFD_GET_INFO reports of an unreaped process; Linux keeps the task).
  Credentials zombie_creds;
  int exit_signal = SIGCHLD;  // sent to the parent at exit
  PendingSignals shared_pending;
  std::shared_ptr<SignalHandlers> handlers;
  // Job control (signal(7), "Stopping and continuing").
  bool stopped = false;
  int stop_signal = 0;
  bool stop_to_report = false;
  bool continue_to_report = false;
  // Counts group-stops, so that a tracee reports each one once and then
  // runs on when its tracer resumes it (JOBCTL_STOP_PENDING per task).
  uint64_t stop_epoch = 0;
  // The traced leader's exit waits for its tracer's wait before the parent
  // hears of it (sentry/kernel/ptrace.h).
  bool ptrace_exit_pending = false;
  bool child_subreaper = false;
  // SIGNAL_UNKILLABLE: set for the sandbox's init (pid 1, the init of the
  // sandbox's pid namespace). A signal it has no handler for is dropped
  // when a task of the sandbox sends it, SIGKILL and SIGSTOP included;
  // from the kernel or from outside only SIGKILL and SIGSTOP get through
  // (kernel/signal.c sig_task_ignored(), get_signal()). A fault signal with
  // the default action clears it: the init dies of its own SIGSEGV
  // (force_sig_info_to_task()).
  bool unkillable = false;
  int nice = 0;  // setpriority(2), -20..19; scheduling itself stays the host's
  // prctl(PR_SET_PDEATHSIG): sent to this process when its parent exits,
  // and when the parent thread that created it does (the child then
  // belongs to another thread of the parent: forget_original_parent()).
  // Kept per process, where Linux keeps it per thread.
  int pdeath_signal = 0;
  // The parent's thread this process counts as a child of (its creator's
  // tid; 0 if unknown, e.g. CLONE_PARENT or reparented).
  int parent_tid = 0;
  // The "dumpable" flag of the process's mm (prctl(PR_SET_DUMPABLE)):
  // cleared when its effective or filesystem ids change (commit_creds(),
  // with suid_dumpable 0), set again by an execve that leaves the real and
  // effective ids equal. A process that is not dumpable has its /proc/PID
  // entries owned by root and can be looked into only with
  // CAP_SYS_PTRACE. Atomic: read without Kernel::mu().
  std::atomic<bool> dumpable{true};
  // The process has exec'd since its fork (PF_FORKNOEXEC cleared): its
  // parent may no longer change its process group (setpgid(2): EACCES).
  // Guarded by Kernel::mu().
  bool did_exec = false;
  // prctl(PR_SET_THP_DISABLE) (MMF_DISABLE_THP): kept across fork and
  // exec, shown in /proc/PID/status; the host decides about huge pages.
  bool thp_disable = false;
  std::array<struct rlimit, RLIM_NLIMITS> rlimits{};
  // /proc/PID/oom_score_adj, and the floor below which only a writer with
  // CAP_SYS_RESOURCE may lower it (the last value such a writer set:
  // __set_oom_adj()). Kept for the guest; the host's OOM killer sees the
  // sandbox as one process.
  int oom_score_adj = 0;
  int oom_score_adj_min = 0;
  // Guest CPU time of address spaces this group has left (exec, exit), and
  // of reaped children, for times(2), getrusage(2) and CPU clocks.
  int64_t cpu_ns = 0;
  int64_t children_cpu_ns = 0;
  // getrusage(2)'s ru_maxrss in kB: the peak of the address spaces this
  // group has left (exec, exit: signal->maxrss), and the largest of reaped
  // children's own and their children's (signal->cmaxrss).
  int64_t maxrss_kb = 0;
  int64_t children_maxrss_kb = 0;
  // System time (Task::SentryCpuNs) of exited tasks, and of reaped children.
  int64_t sys_ns = 0;
  int64_t children_sys_ns = 0;
  int64_t start_time_ns = 0;  // monotonic, for /proc/PID/stat
  // I/O of threads that have exited and of reaped children (signal->ioac):
  // /proc/PID/io adds the live threads' own.
  IoCounters io;
  // A host eventfd that pidfds of this group poll (-1 until the first
  // pidfd): made readable when the group becomes a zombie (pidfd.cc).
  int exit_event_fd = -1;
  void SignalExitEvent();
  // The wait status of death by core-dumping signal `sig`: "core dumped"
  // (0x80) only where Linux would write one, which do_coredump() skips
  // when RLIMIT_CORE is 0 (we write none either way).
  int CoreDumpStatus(int sig) const {
    return sig | (rlimits[RLIMIT_CORE].rlim_cur != 0 ? 0x80 : 0);
  }

 private:
  const int tgid_;
  int vtgid_ = 0;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_THREAD_GROUP_H_
