#include "seccomp/sentry_policy.h"

#include <elf.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sockios.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include "seccomp/pidfd_info.h"

// <linux/timerfd.h> clashes with <fcntl.h>.
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

namespace seedvisor::seccomp {
namespace {

constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;

}  // namespace

Policy SentryPolicy(bool host_writes) {
  Policy p;
  p.name = host_writes ? "sentry_host_writes" : "sentry";
  p.default_action = SECCOMP_RET_TRAP;  // logged, failed with EPERM (sentry_filter.cc)
  p.foreign_abi_action = SECCOMP_RET_TRAP;
  const uint64_t kNoExec = PROT_EXEC;
  p.rules = {
      // The hot path first: the filter is a linear list.
      {SYS_futex, {}, kAllow, "systrap wakeups, absl::Mutex, condition variables"},
      {SYS_process_vm_readv, {}, kAllow, "copying guest memory in"},
      {SYS_process_vm_writev, {}, kAllow, "copying guest memory out"},
      {SYS_read, {}, kAllow, "host files, pipes, eventfds"},
      {SYS_write, {}, kAllow, "host files, stdio, logs"},
      {SYS_pread64, {}, kAllow, "host files"},
      {SYS_pwrite64, {}, kAllow, "host files, /proc/PID/mem of stubs"},
      {SYS_readv, {}, kAllow, "host files"},
      {SYS_writev, {}, kAllow, "host files, stdio"},
      {SYS_preadv, {}, kAllow, "host files"},
      {SYS_pwritev, {}, kAllow, "host files"},
      {SYS_preadv2, {}, kAllow, "stdio on a host pipe or socket (RWF_NOWAIT)"},
      {SYS_pwritev2, {}, kAllow, "stdio on a host pipe or socket (RWF_NOWAIT)"},
      // The platforms: stubs are traced only by these requests.
      {SYS_ptrace, {ArgEq(0, PTRACE_SEIZE)}, kAllow, "attach to a stub thread"},
      {SYS_ptrace, {ArgEq(0, PTRACE_INTERRUPT)}, kAllow, "stop a seized stub thread"},
      {SYS_ptrace, {ArgEq(0, PTRACE_CONT)}, kAllow, "syscall injection"},
      {SYS_ptrace, {ArgEq(0, PTRACE_SYSEMU)}, kAllow, "the ptrace platform's Run"},
      {SYS_ptrace, {ArgEq(0, PTRACE_SYSCALL)}, kAllow,
       "guarded injection: a stub thread with an rseq registration"},
      {SYS_ptrace, {ArgEq(0, PTRACE_GET_SYSCALL_INFO)}, kAllow,
       "injection: is a stopped call the one injected"},
      {SYS_ptrace, {ArgEq(0, PTRACE_GETREGS)}, kAllow, "guest registers"},
      {SYS_ptrace, {ArgEq(0, PTRACE_SETREGS)}, kAllow, "guest registers"},
      {SYS_ptrace, {ArgEq(0, PTRACE_GETFPREGS)}, kAllow, "guest FP registers"},
      {SYS_ptrace, {ArgEq(0, PTRACE_SETFPREGS)}, kAllow, "guest FP registers"},
      {SYS_ptrace, {ArgEq(0, PTRACE_GETREGSET), ArgEq(2, NT_X86_XSTATE)}, kAllow,
       "guest FP/SSE/AVX state (the XSAVE image)"},
      {SYS_ptrace, {ArgEq(0, PTRACE_SETREGSET), ArgEq(2, NT_X86_XSTATE)}, kAllow,
       "guest FP/SSE/AVX state (the XSAVE image)"},
      {SYS_ptrace, {ArgEq(0, PTRACE_GETSIGINFO)}, kAllow, "fault details"},
      {SYS_ptrace, {ArgEq(0, PTRACE_DETACH)}, kAllow, "let a stub thread go"},
      {SYS_wait4, {}, kAllow, "ptrace stops of stub threads; the zygote"},
      {SYS_waitid, {}, kAllow, "ptrace stops of stub threads"},
      {SYS_tgkill, {ArgEq(2, 0)}, kAllow, "is a stub thread alive"},
      {SYS_tgkill, {ArgEq(2, SIGURG)}, kAllow, "Context::Interrupt kicks a stub thread"},
      {SYS_tgkill, {ArgEq(2, SIGABRT)}, kAllow, "abort() on a sentry bug"},
      {SYS_kill, {ArgEq(1, SIGKILL)}, kAllow, "destroying a stub process"},
      {SYS_pidfd_open, {ArgEq(1, 0)}, kAllow, "systrap pins its stub processes"},
      {SYS_pidfd_send_signal, {ArgEq(1, SIGKILL)}, kAllow, "destroying a systrap stub"},
      // Read-only: a stub the host killed with SIGSEGV (a failed rseq check
      // on a stub thread) is the guest's SIGSEGV, not a SIGKILL. A filter
      // cannot tell a pidfd from another fd; the sentry makes this request
      // only on its stubs' pidfds (StubProcess::DeathSignal), and no guest
      // ioctl reaches a host fd with a request the guest chose (host
      // sockets, host stdio and --network=host pass on listed ones only).
      {SYS_ioctl, {ArgEq(1, kPidfdGetInfo)}, kAllow, "PIDFD_GET_INFO: what a dead stub died of"},
      {SYS_kill, {ArgEq(1, 0)}, kAllow, "is a stub alive"},
      // Files (the host root is passed through read-only; paths cannot be
      // checked here: the VFS confines them).
      {SYS_openat, {}, kAllow, "host files, /proc of stubs"},
      {SYS_close, {}, kAllow, "any fd"},
      {SYS_close_range, {}, kAllow, "fd cleanup"},
      {SYS_newfstatat, {}, kAllow, "stat of host files"},
      {SYS_fstat, {}, kAllow, "stat of host files"},
      {SYS_statx, {}, kAllow, "stat of host files"},
      {SYS_fstatfs, {}, kAllow, "statfs(2) of host-backed paths (df, shutil.disk_usage)"},
      {SYS_lseek, {}, kAllow, "host files"},
      {SYS_getdents64, {}, kAllow, "host directories"},
      {SYS_readlinkat, {}, kAllow, "host symlinks"},
      {SYS_faccessat, {}, kAllow, "host access checks"},
      {SYS_faccessat2, {}, kAllow, "host access checks"},
      {SYS_access, {}, kAllow, "host access checks"},
      {SYS_getcwd, {}, kAllow, "glibc"},
      {SYS_fcntl, {}, kAllow, "fd flags, locks"},
      {SYS_dup, {}, kAllow, "fds"},
      {SYS_dup3, {}, kAllow, "fds"},
      {SYS_ftruncate, {}, kAllow, "memfds (systrap regions, tmpfs)"},
      {SYS_fallocate, {}, kAllow, "memfd-backed files"},
      {SYS_fsync, {}, kAllow, "host files"},
      {SYS_fdatasync, {}, kAllow, "host files"},
      {SYS_sendfile, {}, kAllow, "host file copies"},
      {SYS_copy_file_range, {}, kAllow, "host file copies"},
      {SYS_splice, {}, kAllow, "pipes"},
      {SYS_tee, {}, kAllow, "guest tee(2): only the host can copy a pipe without consuming it"},
      {SYS_memfd_create, {}, kAllow, "systrap regions, tmpfs data"},
      {SYS_pipe2, {}, kAllow, "internal pipes"},
      {SYS_eventfd2, {}, kAllow, "wakeups"},
      {SYS_timerfd_create, {}, kAllow, "timers"},
      {SYS_timerfd_settime, {}, kAllow, "timers"},
      {SYS_timerfd_gettime, {}, kAllow, "timers"},
      {SYS_poll, {}, kAllow, "waiting on host fds"},
      {SYS_ppoll, {}, kAllow, "waiting on host fds"},
      {SYS_epoll_create1, {}, kAllow, "I/O poller"},
      {SYS_epoll_ctl, {}, kAllow, "I/O poller"},
      {SYS_epoll_wait, {}, kAllow, "I/O poller"},
      {SYS_epoll_pwait, {}, kAllow, "I/O poller"},
      // Terminal ioctls on the host stdio the guest inherits.
      {SYS_ioctl, {ArgEq(1, TCGETS)}, kAllow, "isatty on host stdio"},
      {SYS_ioctl, {ArgEq(1, TCSETS)}, kAllow, "tty modes on host stdio"},
      {SYS_ioctl, {ArgEq(1, TCSETSW)}, kAllow, "tty modes on host stdio"},
      {SYS_ioctl, {ArgEq(1, TCSETSF)}, kAllow, "tty modes on host stdio"},
      {SYS_ioctl, {ArgEq(1, TIOCGWINSZ)}, kAllow, "terminal size"},
      {SYS_ioctl, {ArgEq(1, TIOCSWINSZ)}, kAllow, "terminal size"},
      {SYS_ioctl, {ArgEq(1, TIOCGPGRP)}, kAllow, "job control on host stdio"},
      {SYS_ioctl, {ArgEq(1, FIONREAD)}, kAllow, "bytes readable"},
      {SYS_ioctl, {ArgEq(1, TIOCOUTQ)}, kAllow, "SIOCOUTQ: bytes unsent on host sockets"},
      {SYS_ioctl, {ArgEq(1, FIONBIO)}, kAllow, "non-blocking host fds"},
      {SYS_ioctl, {ArgEq(1, FIOCLEX)}, kAllow, "close-on-exec"},
      {SYS_ioctl, {ArgEq(1, TFD_IOC_SET_TICKS)}, kAllow,
       "sandbox fork: a timerfd's unread expirations (fs/anon/hostfd_file.cc)"},
      {SYS_ioctl, {ArgEq(1, TIOCGPTN)}, kAllow, "boot: ptsname of an exec's pty (control/stdio.cc)"},
      {SYS_ioctl, {ArgEq(1, TIOCSPTLCK)}, kAllow, "boot: unlockpt of an exec's pty"},
      // Sockets (host network passthrough, control sockets).
      {SYS_socket, {}, kAllow, "--network=host, control socket"},
      {SYS_socketpair, {}, kAllow, "internal channels"},
      {SYS_connect, {}, kAllow, "host sockets"},
      {SYS_bind, {}, kAllow, "host sockets"},
      {SYS_listen, {}, kAllow, "host sockets"},
      {SYS_accept4, {}, kAllow, "host sockets"},
      {SYS_accept, {}, kAllow, "host sockets"},
      {SYS_sendto, {}, kAllow, "host sockets"},
      {SYS_recvfrom, {}, kAllow, "host sockets"},
      {SYS_sendmsg, {}, kAllow, "host sockets"},
      {SYS_recvmsg, {}, kAllow, "host sockets"},
      {SYS_sendmmsg, {}, kAllow, "host sockets"},
      {SYS_recvmmsg, {}, kAllow, "host sockets"},
      {SYS_shutdown, {}, kAllow, "host sockets"},
      {SYS_getsockname, {}, kAllow, "host sockets"},
      {SYS_getpeername, {}, kAllow, "host sockets"},
      {SYS_setsockopt, {}, kAllow, "host sockets"},
      {SYS_getsockopt, {}, kAllow, "host sockets"},
      // Memory of the sentry itself: never executable memory once running.
      {SYS_mmap, {ArgMasked(2, kNoExec, 0)}, kAllow, "malloc, thread stacks, systrap regions"},
      {SYS_mprotect, {ArgMasked(2, kNoExec, 0)}, kAllow, "guard pages"},
      {SYS_munmap, {}, kAllow, "malloc"},
      {SYS_mremap, {}, kAllow, "malloc"},
      {SYS_madvise, {}, kAllow, "malloc"},
      {SYS_brk, {}, kAllow, "malloc"},
      // Threads: one per guest task, service threads. glibc tries clone3
      // first and falls back to clone on ENOSYS; clone3's flags live in
      // memory the filter cannot read, so only clone (with CLONE_THREAD) runs.
      {SYS_clone3, {}, ActErrno(ENOSYS), "glibc's pthread_create falls back to clone"},
      {SYS_clone, {ArgMasked(0, CLONE_THREAD, CLONE_THREAD)}, kAllow, "new sentry threads"},
      // TODO(socket owner): start the helper before the filter goes in and
      // drop these four rules (a sentry that can unshare is a bigger target).
      {SYS_clone, {ArgEq(0, CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD)}, kAllow,
       "sentry/socket/netns.cc: fork() of the loopback-namespace helper (started lazily)"},
      {SYS_unshare, {ArgEq(0, CLONE_NEWNET)}, kAllow, "netns.cc helper: its own netns (root)"},
      {SYS_unshare, {ArgEq(0, CLONE_NEWNET | CLONE_NEWUSER)}, kAllow,
       "netns.cc helper: its own netns (rootless)"},
      {SYS_ioctl, {ArgEq(1, SIOCGIFFLAGS)}, kAllow, "netns.cc helper: bring lo up"},
      // Read-only ioctls the guest's sockets pass on (sentry/socket/host_socket.cc,
      // if_ioctl.cc): receive timestamps of inet sockets, and with
      // --network=host the host's interfaces (never the SIOCS* ones).
      {SYS_ioctl, {ArgEq(1, SIOCGSTAMP)}, kAllow, "SIOCGSTAMP of a host inet socket"},
      {SYS_ioctl, {ArgEq(1, SIOCATMARK)}, kAllow, "SIOCATMARK of a host inet socket"},
      {SYS_ioctl, {ArgEq(1, SIOCGSTAMPNS)}, kAllow, "SIOCGSTAMPNS of a host inet socket"},
      {SYS_ioctl, {ArgEq(1, 0x80108906)}, kAllow, "SIOCGSTAMP_NEW of a host inet socket"},
      {SYS_ioctl, {ArgEq(1, 0x80108907)}, kAllow, "SIOCGSTAMPNS_NEW of a host inet socket"},
      {SYS_ioctl, {ArgEq(1, SIOCGIFCONF)}, kAllow, "--network=host: the host's interfaces"},
      {SYS_ioctl, {ArgEq(1, SIOCGIFNAME)}, kAllow, "--network=host: the host's interfaces"},
      {SYS_ioctl, {ArgEq(1, SIOCGIFINDEX)}, kAllow, "--network=host: the host's interfaces"},
      {SYS_ioctl, {ArgEq(1, SIOCGIFMETRIC)}, kAllow, "--network=host: the host's interfaces"},
      {SYS_ioctl, {ArgEq(1, SIOCGIFMTU)}, kAllow, "--network=host: the host's interfaces"},
      {SYS_ioctl, {ArgEq(1, SIOCGIFTXQLEN)}, kAllow, "--network=host: the host's interfaces"},
      {SYS_ioctl, {ArgEq(1, SIOCGIFHWADDR)}, kAllow, "--network=host: the host's interfaces"},
      {SYS_ioctl, {ArgEq(1, SIOCGIFADDR)}, kAllow, "--network=host: the host's interfaces"},
      {SYS_ioctl, {ArgEq(1, SIOCGIFNETMASK)}, kAllow, "--network=host: the host's interfaces"},
      {SYS_ioctl, {ArgEq(1, SIOCGIFBRDADDR)}, kAllow, "--network=host: the host's interfaces"},
      {SYS_ioctl, {ArgEq(1, SIOCGIFDSTADDR)}, kAllow, "--network=host: the host's interfaces"},
      {SYS_ioctl, {ArgEq(1, SIOCSIFFLAGS)}, kAllow, "netns.cc helper: bring lo up"},
      {SYS_dup2, {}, kAllow, "fds (netns.cc helper)"},
      {SYS_set_robust_list, {}, kAllow, "new threads (glibc)"},
      {SYS_rseq, {}, kAllow, "new threads (glibc)"},
      {SYS_set_tid_address, {}, kAllow, "new threads (glibc)"},
      {SYS_exit, {}, kAllow, "thread exit"},
      {SYS_exit_group, {}, kAllow, "sandbox exit"},
      {SYS_gettid, {}, kAllow, "thread ids"},
      {SYS_getpid, {}, kAllow, "/proc paths"},
      {SYS_getppid, {}, kAllow, "glibc"},
      {SYS_getuid, {}, kAllow, "credentials"},
      {SYS_geteuid, {}, kAllow, "credentials"},
      {SYS_getgid, {}, kAllow, "credentials"},
      {SYS_getegid, {}, kAllow, "credentials"},
      {SYS_sched_yield, {}, kAllow, "absl::Mutex spinning"},
      {SYS_sched_getaffinity, {}, kAllow, "std::thread::hardware_concurrency"},
      {SYS_sched_getparam, {}, kAllow, "pthread attributes"},
      {SYS_sched_getscheduler, {}, kAllow, "pthread attributes"},
      // Sandbox fork (sentry/sfork): the forked sentry's anchor process
      // leads the new sandbox's process group and kills it when its parent,
      // the forked sentry, dies.
      {SYS_setpgid, {ArgEq(1, 0)}, kAllow, "sfork: the anchor's own process group"},
      {SYS_getpgid, {}, kAllow, "sfork: is the anchor's group there yet"},
      {SYS_prctl, {ArgEq(0, PR_SET_PDEATHSIG)}, kAllow, "sfork: the anchor's parent-death signal"},
      {SYS_prctl, {ArgEq(0, PR_SET_NAME)}, kAllow, "thread names"},
      {SYS_prctl, {ArgEq(0, PR_GET_NAME)}, kAllow, "thread names"},
      {SYS_arch_prctl, {ArgEq(0, 0x1002 /* ARCH_SET_FS */)}, kAllow, "TLS of new threads"},
      // Signals of the sentry itself.
      {SYS_rt_sigaction, {}, kAllow, "handlers"},
      {SYS_rt_sigprocmask, {}, kAllow, "masks (glibc, threads)"},
      {SYS_rt_sigreturn, {}, kAllow, "return from a handler (OnSigsys too)"},
      {SYS_rt_sigtimedwait, {}, kAllow, "signal service thread"},
      {SYS_sigaltstack, {}, kAllow, "glibc"},
      // Time.
      {SYS_clock_gettime, {}, kAllow, "clocks (vDSO fallback)"},
      {SYS_clock_getres, {}, kAllow, "clocks"},
      {SYS_clock_nanosleep, {}, kAllow, "sleeps"},
      {SYS_nanosleep, {}, kAllow, "sleeps"},
      // The kernel sends a thread back into a timed wait (futex, nanosleep,
      // poll) it was stopped in (SIGSTOP/SIGCONT, a debugger, a cgroup
      // freezer) through restart_syscall; it restarts only the call the
      // thread was making, which this filter allowed. Denied, the wait
      // failed with EPERM (abseil aborts on that): test/hostile:stop_cont_*.
      {SYS_restart_syscall, {}, kAllow, "a stopped thread's timed wait resumes"},
      {SYS_gettimeofday, {}, kAllow, "clocks"},
      {SYS_getrandom, {}, kAllow, "the guest's random source"},
      {SYS_prlimit64, {}, kAllow, "rlimits"},
      {SYS_getrusage, {}, kAllow, "resource usage"},
      {SYS_times, {}, kAllow, "the guest's times(2)"},
      {SYS_getgroups, {}, kAllow, "credentials"},
      {SYS_getresuid, {}, kAllow, "credentials"},
      {SYS_getresgid, {}, kAllow, "credentials"},
      {SYS_sysinfo, {}, kAllow, "/proc/meminfo, sysinfo(2)"},
      {SYS_uname, {}, kAllow, "host kernel facts"},
      {SYS_getcpu, {}, kAllow, "glibc"},
      {SYS_membarrier, {}, kAllow, "glibc, libstdc++"},
  };
  if (host_writes) {
    // A writable bind mount (sentry/fs/host/host_rw.cc): every call is
    // relative to a directory fd of the volume or to /proc/self/fd/N of
    // one of its objects; the VFS confines the names, as it does openat's.
    // (O_APPEND writes are pwritev2 with RWF_APPEND, which every sandbox
    // has for its stdio's RWF_NOWAIT.)
    p.rules.insert(p.rules.end(), {
        {SYS_mkdirat, {}, kAllow, "writable bind: mkdir(2)"},
        {SYS_unlinkat, {}, kAllow, "writable bind: unlink(2), rmdir(2)"},
        {SYS_renameat2, {}, kAllow, "writable bind: rename(2), renameat2(2)"},
        {SYS_linkat, {}, kAllow, "writable bind: link(2)"},
        {SYS_symlinkat, {}, kAllow, "writable bind: symlink(2)"},
        // The name of a FIFO or unix socket only (mode's type; no device
        // number): the sentry never opens either on the host, and never
        // makes a device node there.
        {SYS_mknodat, {ArgMasked(2, S_IFMT, S_IFIFO), ArgEq(3, 0)}, kAllow,
         "writable bind: mkfifo(3)"},
        {SYS_mknodat, {ArgMasked(2, S_IFMT, S_IFSOCK), ArgEq(3, 0)}, kAllow,
         "writable bind: bind(2) of a unix socket"},
        {SYS_fchmod, {}, kAllow, "writable bind: the exact mode of a new file or directory"},
        {SYS_fchmodat, {}, kAllow, "writable bind: chmod(2) through /proc/self/fd/N"},
        {SYS_fchown, {}, kAllow, "writable bind: a new file is the guest's"},
        {SYS_fchownat, {}, kAllow, "writable bind: chown(2), a new symlink's owner"},
        {SYS_utimensat, {}, kAllow, "writable bind: utimensat(2)"},
        // f*xattr refuse the O_PATH fds the volume holds: by the magic link.
        {SYS_getxattr, {}, kAllow, "writable bind: user.* xattrs through /proc/self/fd/N"},
        {SYS_listxattr, {}, kAllow, "writable bind: user.* xattrs through /proc/self/fd/N"},
        {SYS_setxattr, {}, kAllow, "writable bind: user.* xattrs through /proc/self/fd/N"},
        {SYS_removexattr, {}, kAllow, "writable bind: user.* xattrs through /proc/self/fd/N"},
    });
  }
  return p;
}

}  // namespace seedvisor::seccomp
