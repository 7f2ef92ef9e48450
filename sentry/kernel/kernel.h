// Kernel: one sandbox's user-space kernel.
//
// It owns the platform, the pid namespace (guest ids start at 1), the VFS,
// and the lock that guards the process tree and signal state.
//
//   SV_ASSIGN_OR_RETURN(auto k, Kernel::Create(opts));
//   absl::StatusOr<int> status = k->RunInit(argv, envp);  // a wait status
#ifndef SEEDVISOR_SENTRY_KERNEL_KERNEL_H_
#define SEEDVISOR_SENTRY_KERNEL_KERNEL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "platform/platform.h"
#include "sentry/base/mono_condvar.h"
#include "sentry/kernel/futex.h"
#include "sentry/kernel/pid_namespace.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/thread_group.h"
#include "sentry/kernel/timers.h"
#include "sentry/kernel/uts.h"

namespace seedvisor::sentry {

class Vfs;
class Strace;
struct TakenInterface;

// Something that must hear that its sandbox was forked (the guest-visible
// fork generation, /proc/seedvisor/fork_generation).
class ForkGenerationWatcher {
 public:
  virtual ~ForkGenerationWatcher() = default;
  virtual void ForkGenerationChanged() = 0;
};

struct KernelOptions {
  std::string platform = "ptrace";
  std::string hostname = "seedvisor";
  bool strace = false;
  // Host fds that become the init task's 0, 1 and 2.
  int stdio[3] = {0, 1, 2};
  std::string cwd = "/";
  // The host directory that is the sandbox's "/" (read-only underneath the
  // in-sandbox overlay): "/" for `seedsc do`, a bundle's rootfs for OCI.
  std::string root = "/";
  // OCI root.readonly: every change to the root fails with EROFS (no
  // overlay writes either); other mounts keep their own modes.
  bool read_only_root = false;
  // runsc's --network: "host" passes AF_INET/AF_INET6 sockets through to the
  // host's network; "none" gives them a private loopback-only network;
  // "sandbox" serves AF_INET from the sentry's own stack (NetService).
  std::string network = "none";
  // --network=sandbox: serve the Ethernet interfaces of the sentry's network
  // namespace (their addresses move from the host to the sandbox's stack;
  // sentry/socket/net_takeover.h). Never for the host's own namespace.
  bool take_over_interfaces = false;
  // The same, done earlier by the caller (sentry/socket/net_takeover.h:
  // `seedsc boot` takes them over while it still holds the capabilities);
  // Kernel::Create attaches them to the stack.
  std::shared_ptr<const std::vector<TakenInterface>> taken_interfaces;
  // runsc's --net-raw: raw sockets for guests with CAP_NET_RAW. Without it
  // nothing that needs CAP_NET_RAW works (runsc takes the capability away;
  // sentry/socket/host_policy.h).
  bool net_raw = false;
  // OCI linux.resources.pids.limit at boot: at most this many guest tasks
  // (threads included, zombies until reaped), for everyone, root included:
  // clone and fork fail with EAGAIN past it, as Linux's pids cgroup
  // (pids_can_fork()). 0 or less: no limit. Kernel::SetPidsLimit changes it.
  int64_t pids_limit = 0;
};

// A process to start in a running sandbox (the OCI lifecycle: the container
// init at `start`, more processes at `exec`). See Kernel::StartProcess.
struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] without '/' is searched in envp's PATH
  std::vector<std::string> envp;
  std::string cwd = "/";
  Credentials creds;
  int stdio[3] = {0, 1, 2};  // host fds, dup'ed; the caller keeps its own
  std::vector<std::pair<int, struct rlimit>> rlimits;  // on top of the host's
  // Set: exec'd instead of argv[0] (no PATH search; argv[0] is only argv[0]).
  std::string exec_path;
  // A process before the init (OCI startContainer hooks): never pid 1, not
  // the init, no parent; Release() it once waited for.
  bool before_init = false;
  // A container of a multi-container sandbox (sentry/control's
  // CreateContainer): the process's root directory, a path in the
  // sandbox's VFS where that container's root is mounted ("" = the
  // sandbox's root; cwd is then resolved inside it), and the container id
  // its ThreadGroup carries (ThreadGroup::container_id).
  std::string root;
  std::string container_id;
  // The pid namespace the process lives in (null: the sandbox's own): a
  // pod's container with a namespace of its own (linux.namespaces "pid"
  // without a path). The first process started in it is its init (id 1
  // there); once that init has exited, a start fails, as a fork into the
  // namespace would (alloc_pid()). A before_init process never joins it.
  std::shared_ptr<PidNamespace> pid_ns;
};

class IpcNamespace;
class MqueueFs;

class NetService;

class Kernel {
 public:
  // The kernel release we claim in uname(2), /proc/version and
  // /proc/sys/kernel/osrelease; README.md ("The kernel release") says why
  // this one.
  static constexpr const char* kRelease = "4.19.0";
  static constexpr const char* kVersion = "#1 SMP Sun Jan 10 15:06:54 PST 2016";

  static absl::StatusOr<std::unique_ptr<Kernel>> Create(const KernelOptions& opts);
  ~Kernel();

  // Starts pid 1 running argv[0] (looked up in PATH from envp) and waits for
  // the sandbox to end: returns pid 1's wait status. `started`, if given, is
  // called once pid 1's exec has succeeded or failed (`seedsc do`'s
  // --boot-timeout watches for it).
  absl::StatusOr<int> RunInit(const std::vector<std::string>& argv,
                              const std::vector<std::string>& envp,
                              std::function<void()> started = nullptr);

  // ---- The OCI lifecycle (kernel_lifecycle.cc) ----
  // Starts a process and returns once its first exec has succeeded or
  // failed (NotFound: no such program). The first process started becomes
  // pid 1, the sandbox's init; later ones (runsc exec) have no parent inside
  // the sandbox (getppid() == 0, as for a process setns'd into a pid
  // namespace) and stay zombies for their waiters until the kernel goes.
  absl::StatusOr<std::shared_ptr<ThreadGroup>> StartProcess(const ProcessSpec& spec);
  // The sandbox is ending (its guest killed): StartProcess refuses from
  // now on, so that no process starts after the kill sweep that made the
  // same mu() section (sentry/control's Shutdown).
  void RefuseNewProcessesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { no_new_processes_ = true; }
  // Blocks until pid 1 has exited and every task is gone; pid 1's wait status.
  int WaitInit();
  // Blocks until `tg` has exited; its wait status.
  int WaitProcess(const std::shared_ptr<ThreadGroup>& tg);
  // The same for at most `timeout`: nullopt if `tg` is still alive.
  std::optional<int> WaitProcessFor(const std::shared_ptr<ThreadGroup>& tg, absl::Duration timeout);
  // Kills `tg` (SIGKILL) if it is alive.
  void KillProcess(ThreadGroup& tg);
  // Frees the pid of a ProcessSpec::before_init process that has exited.
  void Release(const std::shared_ptr<ThreadGroup>& tg);
  // ---- Quiescing: seeds and `seedsc pause` (kernel_quiesce.cc) ----
  // Parks every task at a syscall boundary: a task in guest code is kicked
  // out of it, a task blocked in a syscall is interrupted and will restart
  // the syscall transparently (the park is not a signal: no EINTR, no
  // handler), and the timer service thread ends. Parked tasks hold no lock
  // and wait on a futex word, never on a Mutex, so that a host fork of the
  // sentry (sentry/sfork) copies no waiter. Fails (and unparks) if some task
  // does not park within `timeout` (e.g. a vfork parent waiting for its
  // child), naming it.
  absl::Status Quiesce(absl::Duration timeout);
  // Lets parked tasks run again and restarts the timer service.
  void Unquiesce();
  // True from Quiesce until Unquiesce; read without the lock by blocking
  // syscalls (Task::SignalPending).
  bool park_requested() const { return park_word_.load(std::memory_order_acquire) != 0; }
  // Counts successful Quiesce calls: what a quiesced seed prepared for its
  // next fork (sentry/sfork) is valid while this stays the same and the
  // kernel stays quiesced.
  uint64_t quiesce_epoch() const { return quiesce_epoch_.load(std::memory_order_acquire); }
  // Called by a task's host thread in PrepareToRun: waits, holding no lock,
  // until Unquiesce, or until its group is killed (it leaves to die, as a
  // task in a frozen cgroup v2 dies of SIGKILL). Returns with mu() held.
  void ParkTask(Task& t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A SIGKILL was sent while the kernel is quiesced: the parked tasks look
  // again and those of killed groups leave to die, the others stay parked.
  // The quiesced state changes, so quiesce_epoch() moves on (a seed's
  // prepared fork state no longer fits). Nothing unless quiesced.
  void WakeParkedToDieLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every live task is parked (or has exited).
  bool AllParked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits until AllParked(), for at most `timeout`; false if some task has
  // not parked by then. A paused sandbox fork (a new seed) waits for its
  // tasks' new host threads before it serves a Fork of its own.
  bool AwaitAllParked(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs `work(task, i)` for each `tasks[i]` on that task's own host thread
  // (the threads run concurrently) and waits until all are done; the first
  // error, by index. The kernel must be quiesced and every one of `tasks`
  // parked. For what only a task's own thread may do (on ptrace, anything
  // that touches its stub thread): sandbox fork prepares a seed with it.
  // One caller at a time (sandbox forks of one seed are serialized).
  //
  //   k.RunOnParkedTasks(tasks, [](Task& t, size_t) { return ...; });
  absl::Status RunOnParkedTasks(const std::vector<std::shared_ptr<Task>>& tasks,
                                const std::function<absl::Status(Task&, size_t)>& work)
      ABSL_LOCKS_EXCLUDED(mu_);

  // ---- Uniqueness after a sandbox fork (sentry/sfork) ----
  // How many times this sandbox's state was duplicated by a sandbox fork:
  // both the fork and its seed count one up per fork, so a guest that sees
  // the number change knows its random state may now exist twice and must
  // be re-seeded. 0 in a sandbox never forked.
  uint64_t fork_generation() const { return fork_generation_.load(); }
  void BumpForkGeneration();
  // `w` hears every bump until it is gone.
  void WatchForkGeneration(std::weak_ptr<ForkGenerationWatcher> w);
  // Sandbox fork, first thing in the forked sentry (its only thread): the
  // kernel's locks start over, free and without waiters (the seed's threads
  // that held or awaited them do not exist here). sentry/sfork.
  void ReinitInForkChild() ABSL_NO_THREAD_SAFETY_ANALYSIS;

  platform::Platform& platform() { return *platform_; }
  Vfs& vfs() { return *vfs_; }
  const KernelOptions& options() const { return opts_; }
  // The sandbox's initial UTS namespace (a task's own: Task::uts()).
  UtsNames& uts() { return *uts_; }
  const std::shared_ptr<UtsNames>& shared_uts() const { return uts_; }

  absl::Mutex& mu() ABSL_LOCK_RETURNED(mu_) { return mu_; }
  // A thread group has just stopped being alive (WaitProcess* return).
  void SignalExitWaitersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { exit_cv_.SignalAll(); }

  // ---- The pid namespace (guarded by mu()) ----
  // Ids are below this (/proc/sys/kernel/pid_max).
  static constexpr int kPidMax = 32768;
  // fs.nr_open: the largest RLIMIT_NOFILE hard limit (sysctl_nr_open).
  static constexpr uint64_t kNrOpen = 1 << 20;
  int AllocateTid() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // clone3's set_tid: `tid` itself, or -EEXIST if it is in use.
  int AllocateTidAt(int tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // O(log n) in the number of tasks, both.
  void RegisterTask(std::shared_ptr<Task> t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnregisterTask(int tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `tg`, a zombie, is reaped (wait, autoreap, a tracer's reap, Release):
  // its id is free again and its leader no longer counts against the pids
  // limit (release_task()). Every change to ThreadGroup::State::kReaped
  // goes through here.
  void ReapLocked(ThreadGroup& tg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `tg`, a zombie whose waiter is outside the sandbox (no parent inside),
  // no longer counts against the pids limit; its id stays taken.
  void ReleasePidChargeLocked(ThreadGroup& tg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether no live thread group holds `tid` as its tgid (dropping the
  // entry of one that is reaped or gone).
  bool TgidFreeLocked(int tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // setpgid(2)/setsid(2): `tg` joins process group `pgid` of session
  // `sid` (global ids). A group's or session's id stays taken, and keeps
  // its ids in pid namespaces, while an unreaped thread group is in it,
  // whether or not its leader is (a struct pid outlives its task while a
  // PIDTYPE_PGID/SID link holds it): AllocateTid does not give it out and
  // getpgid/kill(-pgrp) in a namespace still find it.
  void SetGroupIdsLocked(ThreadGroup& tg, int pgid, int sid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The session of process group `pgid` (global ids): the sid of the
  // thread groups, zombies included, that have `pgid` as their group
  // (pid_task(PIDTYPE_PGID) in Linux finds a zombie leader until it is
  // reaped); 0 if none has. O(log n).
  int ProcessGroupSessionLocked(int pgid) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether global id `id` names anything (find_pid_ns()): a task, an
  // unreaped thread group, or a process group or session.
  bool IdInUseLocked(int id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The numbers of global id `global` (pid_namespace.h's PidNumbers, the
  // struct pid find_pid_ns() finds), the same object from its task's
  // registration until the id is free (ForgetIdLocked), while a thread,
  // an unreaped process, or a process group or session holds it; null if
  // nothing ever took it. Who keeps naming a task, process or group holds
  // the object, and tells the id's holder from a later one by comparing.
  // O(log n).
  std::shared_ptr<const PidNumbers> NumbersOfLocked(int global) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = id_numbers_.find(global);
    return it == id_numbers_.end() ? nullptr : it->second;
  }
  // Whether process group `pgid` (global) has an unreaped member
  // (pid_task(PIDTYPE_PGID) finds a task). O(log n).
  bool ProcessGroupExistsLocked(int pgid) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pgrps_.count(pgid) != 0;
  }
  // tiocspgrp()'s checks of a new foreground group `local` of `ns` for a
  // caller in session `sid` (global): ESRCH if `ns` has no such id, EPERM
  // unless the process group of that id, or with no such group the
  // process of that id (session_of_pgrp()), is in session `sid`. The
  // group's global id.
  Result<int> ForegroundGroupLocked(const PidNamespace* ns, int local, int sid)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<Task> TaskByTid(int tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether `parent` may make one more task (copy_process()): EAGAIN past
  // the sandbox's pids limit (pids_limit(), for everyone), or past its
  // RLIMIT_NPROC (tasks of its real uid; real uid 0, CAP_SYS_RESOURCE and
  // CAP_SYS_ADMIN are exempt).
  Status CheckTaskLimits(const Task& parent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The tasks the pids limit counts (pids.current): live tasks, and the
  // leaders of thread groups not yet reaped. O(1).
  int64_t PidsChargedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pids_charged_; }
  // The sandbox's pids limit (0: none), set at boot (KernelOptions) and by
  // an update (`seedsc update`, containerd's Task.Update, through the
  // control server). Lowering it below pids.current kills nothing: only
  // new tasks are refused, as Linux's pids.max.
  int64_t pids_limit() const { return pids_limit_.load(std::memory_order_relaxed); }
  void SetPidsLimit(int64_t limit) { pids_limit_.store(limit > 0 ? limit : 0); }
  // A pod's other containers (ThreadGroup::container_id not empty): each
  // its own pids limit (its linux.resources.pids.limit; 0: none) over its
  // own tasks, counted as pids.current is (threads, unreaped zombies), on
  // top of the sandbox's. Each of its thread groups holds its counter
  // (ThreadGroup::container_pids).
  void SetContainerPidsLimit(const std::string& container, int64_t limit)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A deleted container's limit and count go, whatever is left of it (its
  // zombies no init reaps): a new container of that id starts from none,
  // and such a zombie's later reap uncharges only the old counter.
  void ForgetContainerPidsLocked(const std::string& container) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    container_pids_.erase(container);
  }
  // A pod's container's own host cgroups (memory, cpu, cpuacct, cpuset),
  // where the stub of each of its processes lives: the host keeps its
  // linux.resources there (host_cgroups.h). Set before its first process.
  void SetContainerHostCgroupsLocked(const std::string& container,
                                     std::shared_ptr<const HostCgroups> cgroups)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t ContainerPidsLimitLocked(const std::string& container) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t ContainerPidsChargedLocked(const std::string& container) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The pids limit a new task of a container (its counter; null: the
  // first container) would pass (the sandbox's or the container's own), or
  // 0 if it may be made.
  int64_t PidsLimitReachedLocked(const ContainerPids* container) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a change of `t`'s real uid (setuid(2) family): its task now
  // counts against the new uid's RLIMIT_NPROC.
  void RecountTaskUid(Task& t);
  std::shared_ptr<ThreadGroup> ThreadGroupByTgid(int tgid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every live task, in tid order (for /proc and kill(-1)).
  std::vector<std::shared_ptr<Task>> Tasks() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What /proc shows: the live task `tid`, or the exited leader of the
  // unreaped thread group `tid` (a zombie, or a process whose leader thread
  // ended before its other threads): Linux keeps the leader's task until
  // release_task() (delay_group_leader()), so /proc/PID stays, in state Z.
  // Null for none. O(log n).
  std::shared_ptr<Task> TaskOrExitedLeaderLocked(int tid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tasks() and those exited leaders, in tid order.
  std::vector<std::shared_ptr<Task>> TasksAndExitedLeadersLocked()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<ThreadGroup> init_tg() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return init_tg_; }

  // ---- Pid namespaces below the sandbox's (pid_namespace.h; mu()) ----
  // `global`'s id as `ns` shows it (null: the sandbox's namespace, whose
  // ids are the global ones): 0 if that task is outside `ns`. O(log n).
  static int IdIn(const PidNamespace* ns, int global);
  // The global id of id `local` of `ns`: 0 if `ns` has no such id.
  static int IdFrom(const PidNamespace* ns, int local);
  // The id `ns` (null: the sandbox's) gave out last, by its cyclic
  // allocation: /proc/loadavg's last field for a reader there.
  int LastIdIn(const PidNamespace* ns) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes `ns` (null: the sandbox's) go on allocating after `last`
  // (/proc/sys/kernel/ns_last_pid; 0 <= last < kPidMax).
  void SetLastIdIn(PidNamespace* ns, int last) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // IdIn for a caller that does not hold mu() (pid_vnr() of an id kept
  // global: an owner, a peer, a sender, a SysV object's last pid).
  int IdInUnlocked(const PidNamespace* ns, int global) ABSL_LOCKS_EXCLUDED(mu_) {
    if (ns == nullptr || global <= 0) return global;
    absl::MutexLock l(&mu_);
    return IdIn(ns, global);
  }
  // The task / thread group that id `local` of `ns` names (find_vpid()):
  // null if `ns` has no such id. What a syscall's pid argument looks up.
  std::shared_ptr<Task> TaskByVtid(const PidNamespace* ns, int local)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int global = IdFrom(ns, local);
    return global > 0 ? TaskByTid(global) : nullptr;
  }
  std::shared_ptr<ThreadGroup> ThreadGroupByVtgid(const PidNamespace* ns, int local)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int global = IdFrom(ns, local);
    return global > 0 ? ThreadGroupByTgid(global) : nullptr;
  }
  // Gives the new global id `global` its ids in `ns` and in each namespace
  // above it (alloc_pid()); `want`, if set, is its id in `ns` (clone3's
  // set_tid). ENOMEM once ns's init has exited, EINVAL for a `want` other
  // than 1 while ns has no init, EEXIST if `want` is taken, EAGAIN when a
  // namespace is full; nothing is kept on failure.
  Status AttachIdsLocked(const std::shared_ptr<PidNamespace>& ns, int global, int want)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops `global`'s ids in pid namespaces once neither a task nor an
  // unreaped thread group holds it, as its tgid, pgid or sid (also a clone's that failed after
  // AttachIdsLocked).
  void ForgetIdLocked(int global) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // disassociate_ctty(1): what a session leader's exit does to the
  // terminal its session controls. The terminals' code (devpts) sets the
  // hook when it makes its first terminal; the exit calls it under mu()
  // with the session's numbers, once the leader's last thread is gone.
  using SessionEndHook = void (*)(Kernel& k, const PidNumbers& session);
  void set_session_end_hook(SessionEndHook h) { session_end_hook_.store(h); }
  void SessionLeaderExitedLocked(ThreadGroup& tg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    SessionEndHook h = session_end_hook_.load();
    if (h != nullptr && tg.sid == tg.tgid() && tg.pid_numbers != nullptr) h(*this, *tg.pid_numbers);
  }
  // The init of a namespace below the sandbox's has exited
  // (zap_pid_namespace()): no task joins `ns` any more and every other
  // one in it or below gets SIGKILL.
  void ZapPidNamespaceLocked(PidNamespace& ns, ThreadGroup& init)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // ---- Signals (task_signals.cc) ----
  // Sends to a whole process / one thread. EPERM/ESRCH as kill(2).
  // `src`, if any, hears whether the signal was queued and when it is taken.
  // `from` decides what reaches the init (SignalSender); a signal sent on
  // behalf of a guest task must say kSandboxTask.
  Status SendGroupSignal(ThreadGroup& tg, const siginfo_t& info,
                         std::shared_ptr<SignalSource> src = nullptr,
                         SignalSender from = SignalSender::kKernel)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Status SendTaskSignal(Task& t, const siginfo_t& info,
                        std::shared_ptr<SignalSource> src = nullptr,
                        SignalSender from = SignalSender::kKernel)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Called when a thread group becomes a zombie, stops or continues.
  void NotifyParent(ThreadGroup& tg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A zombie `tg` goes to its parent: reaped at once if the parent ignores
  // SIGCHLD (SA_NOCLDWAIT), else the parent is told; init's end ends the
  // sandbox.
  void ZombieToParent(ThreadGroup& tg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Nanoseconds since boot (CLOCK_MONOTONIC at Create()).
  int64_t boot_time_ns() const { return boot_ns_; }
  Strace* strace() { return strace_.get(); }
  FutexTable& futex() { return futex_; }
  TimerService& timers() { return *timers_; }
  // The sandbox's own network stack (--network=sandbox), else null.
  NetService* net() { return net_.get(); }
  // The foreground process group of the sandbox's terminal (TIOCGPGRP).
  std::atomic<int>& foreground_pgid() { return foreground_pgid_; }

  // The sandbox is ending: pid 1 exited.
  void InitExited(int status);

  // System V IPC objects (sentry/ipc, which defines this): the sandbox's
  // own IPC namespace, made on first use.
  IpcNamespace& ipc();
  // POSIX message queues and the mqueue filesystem (sentry/fs/mqueue,
  // which defines this), made on first use.
  MqueueFs& mqueue();

 private:
  explicit Kernel(const KernelOptions& opts);

  KernelOptions opts_;
  std::shared_ptr<UtsNames> uts_ = std::make_shared<UtsNames>(opts_.hostname);
  std::unique_ptr<platform::Platform> platform_;
  std::unique_ptr<Vfs> vfs_;
  std::unique_ptr<Strace> strace_;
  int64_t boot_ns_ = 0;
  FutexTable futex_;
  std::unique_ptr<TimerService> timers_;
  std::unique_ptr<NetService> net_;
  std::atomic<int> foreground_pgid_{1};
  std::once_flag ipc_once_;
  std::shared_ptr<IpcNamespace> ipc_;
  std::once_flag mqueue_once_;
  std::shared_ptr<MqueueFs> mqueue_;

  absl::Mutex mu_;
  // Signalled under mu_ when a thread group stops being alive, a task
  // leaves tasks_ or the init exits: what RunInit, WaitInit and
  // WaitProcess* wait for. A CondVar, not mu_.Await(Condition): a thread
  // waiting on mu_ itself sends every Unlock of mu_ (two or more per guest
  // syscall) through absl's slow path, which evaluates the waiter's
  // condition; a CondVar keeps its waiters to itself.
  MonoCondVar exit_cv_;
  int next_tid_ ABSL_GUARDED_BY(mu_) = 1;
  int last_tid_ ABSL_GUARDED_BY(mu_) = 0;  // AllocateTid's last (LastIdIn)
  std::map<int, std::shared_ptr<Task>> tasks_ ABSL_GUARDED_BY(mu_);
  // Thread groups by tgid, from their leader's registration until they are
  // reaped (ReapLocked) or, unreaped, forgotten (TgidFreeLocked).
  struct TgSlot {
    std::weak_ptr<ThreadGroup> tg;
    // The leader's task is gone and its pid still counts (pids_charged_).
    bool leader_charged = false;
    // ReleasePidChargeLocked: the pid no longer counts, reaped or not.
    bool released = false;
    // The leader's task once it has exited, until the group is reaped
    // (TaskOrExitedLeaderLocked); none for a released group, whose waiter
    // is outside the sandbox (it would keep the group from expiring).
    std::shared_ptr<Task> exited_leader = nullptr;
    // Its ThreadGroup::container_pids (the charge outlives the group).
    std::shared_ptr<ContainerPids> container_pids;
    // The pgid and sid it counts in group_id_users_ (0 once reaped).
    int held_pgid = 0;
    int held_sid = 0;
  };
  std::map<int, TgSlot> tgs_ ABSL_GUARDED_BY(mu_);
  // Global ids in use as a process group's or session's id: how many
  // unreaped thread groups' pgid or sid each is (SetGroupIdsLocked).
  std::map<int, int> group_id_users_ ABSL_GUARDED_BY(mu_);
  // Process groups by global id: how many unreaped thread groups are in
  // each, and its session (a group never spans two sessions: setpgid(2)
  // joins only a group of the caller's session).
  struct ProcessGroupUse {
    int members = 0;
    int sid = 0;
  };
  std::map<int, ProcessGroupUse> pgrps_ ABSL_GUARDED_BY(mu_);
  // Moves `slot`'s counts to `pgid` and `sid` (0: none); an id left with
  // no user is forgotten (ForgetIdLocked).
  void HoldGroupIdsLocked(TgSlot& slot, int pgid, int sid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The innermost pid namespace of each global id that has ids below the
  // sandbox's namespace, until the id is free (ForgetIdLocked).
  std::map<int, std::shared_ptr<PidNamespace>> id_ns_ ABSL_GUARDED_BY(mu_);
  // NumbersOfLocked: every global id's numbers, from its task's
  // registration until the id is free.
  std::map<int, std::shared_ptr<const PidNumbers>> id_numbers_ ABSL_GUARDED_BY(mu_);
  // The part of ZombieToParent after a namespace init's wait for the
  // others (PidNamespace::exit_pending).
  void ZombieToParentNow(ThreadGroup& tg) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // PidsChargedLocked(): registered tasks, plus one per unreaped thread
  // group whose leader (tid == tgid) has been unregistered
  // (TgSlot::leader_charged).
  int64_t pids_charged_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int64_t> pids_limit_{0};
  std::atomic<SessionEndHook> session_end_hook_{nullptr};
  // The counter of each container other than the first, from its first
  // limit or process until ForgetContainerPidsLocked; its groups keep it
  // after that.
  std::map<std::string, std::shared_ptr<ContainerPids>> container_pids_ ABSL_GUARDED_BY(mu_);
  // `container`'s counter, made if it has none; null for "" (the first).
  std::shared_ptr<ContainerPids> ContainerPidsOfLocked(const std::string& container)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every change of pids_charged_: `delta` for a task of a container
  // (its counter; null: the first container).
  void ChargePidsLocked(ContainerPids* container, int64_t delta) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Live tasks per real uid, for RLIMIT_NPROC (Linux's ucounts).
  std::map<uid_t, int64_t> tasks_per_uid_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<ThreadGroup> init_tg_ ABSL_GUARDED_BY(mu_);
  bool init_exited_ ABSL_GUARDED_BY(mu_) = false;
  bool no_new_processes_ ABSL_GUARDED_BY(mu_) = false;
  // Non-zero while quiesced: the futex word parked tasks wait on. It counts
  // up (skipping 0) when RunOnParkedTasks has posted work.
  std::atomic<uint32_t> park_word_{0};
  std::atomic<uint64_t> fork_generation_{0};
  std::atomic<uint64_t> quiesce_epoch_{0};
  std::vector<std::weak_ptr<ForkGenerationWatcher>> generation_watchers_ ABSL_GUARDED_BY(mu_);
  int init_status_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_KERNEL_H_
