// clone(2) and clone3(2): the arguments; Task::Clone (kernel/task_clone.cc)
// makes the task.
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>

#include <climits>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pidfd.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/sys_file_internal.h"

namespace seedvisor::sentry {

namespace {

// Installs the pidfd CLONE_PIDFD asks for, then clones.
SyscallReturn CloneWithPidfd(Task& t, Task::CloneArgs& c) {
  if (c.flags & CLONE_PIDFD) {
    // The fd is taken before the child exists, as copy_process() does, so
    // that EMFILE leaves no child behind.
    c.pidfd = std::make_shared<PidfdFile>((c.flags & CLONE_THREAD) ? kPidfdThread : 0);
    SV_ASSIGN_OR_RETURN(c.pidfd_fd, t.fds().Install(c.pidfd, /*cloexec=*/true, 0,
                                                    file_internal::FdLimit(t)));
    // copy_process() stores it before the child is committed: a bad
    // address is EFAULT with no child.
    if (Status s = t.CopyOutObj(c.pidfd_out, static_cast<int32_t>(c.pidfd_fd)); !s.ok()) {
      (void)t.fds().Remove(c.pidfd_fd);
      return s.error();
    }
  }
  Result<int> tid = t.Clone(c);
  if (!tid.ok()) {
    if (c.pidfd_fd >= 0) (void)t.fds().Remove(c.pidfd_fd);
    return tid.error();
  }
  return static_cast<uint64_t>(*tid);
}

// struct clone_args as far as this kernel knows it (CLONE_ARGS_SIZE_VER2).
struct CloneArgsV2 {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};
static_assert(sizeof(CloneArgsV2) == 88);
constexpr size_t kCloneArgsSizeVer0 = 64;
constexpr uint64_t kMaxPidNsLevel = 32;
constexpr uint64_t kCloneLegacyFlags = 0xffffffffULL;

// copy_clone_args_from_user(): EINVAL below VER0, E2BIG above a page or
// with a non-zero byte past what we know (copy_struct_from_user()).
Result<CloneArgsV2> CopyInCloneArgs(Task& t, UserAddr addr, uint64_t size) {
  if (size > kPageSize) return Errno(E2BIG);
  if (size < kCloneArgsSizeVer0) return Errno(EINVAL);
  CloneArgsV2 args{};
  SV_TRY(t.CopyIn(addr, &args, std::min<uint64_t>(size, sizeof(args))));
  if (size > sizeof(args)) {
    std::vector<char> tail(size - sizeof(args));
    SV_TRY(t.CopyIn(addr + sizeof(args), tail.data(), tail.size()));
    for (char c : tail) {
      if (c != 0) return Errno(E2BIG);
    }
  }
  return args;
}

}  // namespace

SyscallReturn SysClone(Task& t, const SyscallArgs& a) {
  // x86-64 argument order: flags, stack, parent_tid, child_tid, tls.
  Task::CloneArgs c;
  c.flags = a.Ulong(0);
  c.stack = a.Addr(1);
  c.parent_tid = a.Addr(2);
  c.child_tid = a.Addr(3);
  c.tls = a.Ulong(4);
  c.pidfd_out = c.parent_tid;
  return CloneWithPidfd(t, c);
}

SyscallReturn SysClone3(Task& t, const SyscallArgs& a) {
  const uint64_t size = a.Ulong(1);
  SV_ASSIGN_OR_RETURN(CloneArgsV2 args, CopyInCloneArgs(t, a.Addr(0), size));
  // copy_clone_args_from_user().
  if (args.set_tid_size > kMaxPidNsLevel) return Errno(EINVAL);
  if (args.set_tid == 0 && args.set_tid_size > 0) return Errno(EINVAL);
  if (args.set_tid != 0 && args.set_tid_size == 0) return Errno(EINVAL);
  if ((args.exit_signal & ~uint64_t{CSIGNAL}) || args.exit_signal > kNumSignals) {
    return Errno(EINVAL);
  }
  if ((args.flags & CLONE_INTO_CGROUP) &&
      (args.cgroup > INT_MAX || size < sizeof(CloneArgsV2))) {
    return Errno(EINVAL);
  }
  std::vector<int32_t> set_tid(args.set_tid_size);
  if (!set_tid.empty()) {
    SV_TRY(t.CopyIn(UserAddr(args.set_tid), set_tid.data(), set_tid.size() * sizeof(int32_t)));
  }
  // clone3_args_valid().
  if (args.flags & ~(kCloneLegacyFlags | CLONE_CLEAR_SIGHAND | CLONE_INTO_CGROUP)) {
    return Errno(EINVAL);
  }
  if (args.flags & (CLONE_DETACHED | (CSIGNAL & ~uint64_t{CLONE_NEWTIME}))) return Errno(EINVAL);
  if ((args.flags & (CLONE_SIGHAND | CLONE_CLEAR_SIGHAND)) ==
      (CLONE_SIGHAND | CLONE_CLEAR_SIGHAND)) {
    return Errno(EINVAL);
  }
  if ((args.flags & (CLONE_THREAD | CLONE_PARENT)) && args.exit_signal != 0) {
    return Errno(EINVAL);
  }
  if ((args.stack == 0) != (args.stack_size == 0)) return Errno(EINVAL);
  if (args.stack != 0 && args.stack + args.stack_size < args.stack) return Errno(EINVAL);
  // One id at most, for the new task's own pid namespace (Linux takes one
  // per level up to the caller's depth; more than one level is EINVAL
  // here), in [1, pid_max) and only for a caller that may checkpoint and
  // restore (alloc_pid()).
  int want_tid = 0;
  if (!set_tid.empty()) {
    if (set_tid.size() > 1) return Errno(EINVAL);
    if (set_tid[0] < 1 || set_tid[0] >= Kernel::kPidMax) return Errno(EINVAL);
    if (!t.creds().HasCap(CAP_SYS_ADMIN) && !t.creds().HasCap(CAP_CHECKPOINT_RESTORE)) {
      return Errno(EPERM);
    }
    want_tid = set_tid[0];
  }
  // No cgroup directory can be opened in the sandbox: whatever the fd is,
  // it is none (cgroup_get_from_fd(): EBADF).
  if (args.flags & CLONE_INTO_CGROUP) return Errno(EBADF);

  Task::CloneArgs c;
  // The exit signal travels in the low byte of the flags, as clone(2)'s.
  c.flags = (args.flags & ~uint64_t{CSIGNAL}) | args.exit_signal;
  // The stack grows down: the child starts at its top.
  if (args.stack != 0) c.stack = UserAddr(args.stack + args.stack_size);
  c.parent_tid = UserAddr(args.parent_tid);
  c.child_tid = UserAddr(args.child_tid);
  c.tls = args.tls;
  c.pidfd_out = UserAddr(args.pidfd);
  c.set_tid = want_tid;
  c.new_time_ns = (args.flags & CLONE_NEWTIME) != 0;
  return CloneWithPidfd(t, c);
}

}  // namespace seedvisor::sentry
