// Declarations of the syscall handlers the table refers to, by family:
// sys_mm.cc, sys_process.cc, sys_id.cc, sys_signal.cc, sys_time.cc, sys_futex.cc,
// sys_misc.cc here; the file family in sys_file.h.
#ifndef SEEDVISOR_SENTRY_SYSCALLS_HANDLERS_H_
#define SEEDVISOR_SENTRY_SYSCALLS_HANDLERS_H_

#include "sentry/syscalls/sys_aio.h"
#include "sentry/syscalls/sys_events.h"
#include "sentry/syscalls/sys_ioprio.h"
#include "sentry/syscalls/sys_mempolicy.h"
#include "sentry/syscalls/sys_file.h"
#include "sentry/syscalls/sys_socket.h"
#include "sentry/syscalls/sys_rw2.h"
#include "sentry/syscalls/sys_splice.h"
#include "sentry/syscalls/sys_xattr.h"
#include "sentry/syscalls/syscall.h"

namespace seedvisor::sentry {

// For syscalls we refuse on purpose (see the table's note).
SyscallReturn SysRefuseEperm(Task& t, const SyscallArgs& a);

// sys_legacy.cc
SyscallReturn SysSysfs(Task& t, const SyscallArgs& a);
SyscallReturn SysUstat(Task& t, const SyscallArgs& a);
SyscallReturn SysVhangup(Task& t, const SyscallArgs& a);
SyscallReturn SysMlock2(Task& t, const SyscallArgs& a);
SyscallReturn SysReadahead(Task& t, const SyscallArgs& a);

// sys_fanotify.cc
SyscallReturn SysFanotifyInit(Task& t, const SyscallArgs& a);
SyscallReturn SysFanotifyMark(Task& t, const SyscallArgs& a);

// sys_landlock.cc
SyscallReturn SysLandlockCreateRuleset(Task& t, const SyscallArgs& a);
SyscallReturn SysLandlockAddRule(Task& t, const SyscallArgs& a);
SyscallReturn SysLandlockRestrictSelf(Task& t, const SyscallArgs& a);

// sys_keys.cc
SyscallReturn SysAddKey(Task& t, const SyscallArgs& a);
SyscallReturn SysRequestKey(Task& t, const SyscallArgs& a);
SyscallReturn SysKeyctl(Task& t, const SyscallArgs& a);

// sys_ptrace.cc
SyscallReturn SysPtrace(Task& t, const SyscallArgs& a);
SyscallReturn SysProcessVmReadv(Task& t, const SyscallArgs& a);
SyscallReturn SysProcessVmWritev(Task& t, const SyscallArgs& a);

SyscallReturn SysAlarm(Task& t, const SyscallArgs& a);
SyscallReturn SysArchPrctl(Task& t, const SyscallArgs& a);
SyscallReturn SysBrk(Task& t, const SyscallArgs& a);
SyscallReturn SysCapget(Task& t, const SyscallArgs& a);
SyscallReturn SysCapset(Task& t, const SyscallArgs& a);
SyscallReturn SysClockGetres(Task& t, const SyscallArgs& a);
SyscallReturn SysClockGettime(Task& t, const SyscallArgs& a);
SyscallReturn SysClockNanosleep(Task& t, const SyscallArgs& a);
SyscallReturn SysClockSettime(Task& t, const SyscallArgs& a);
SyscallReturn SysClone(Task& t, const SyscallArgs& a);
SyscallReturn SysClone3(Task& t, const SyscallArgs& a);
SyscallReturn SysExecve(Task& t, const SyscallArgs& a);
SyscallReturn SysExecveat(Task& t, const SyscallArgs& a);
SyscallReturn SysExit(Task& t, const SyscallArgs& a);
SyscallReturn SysExitGroup(Task& t, const SyscallArgs& a);
SyscallReturn SysFork(Task& t, const SyscallArgs& a);
SyscallReturn SysFutex(Task& t, const SyscallArgs& a);
SyscallReturn SysFutexWaitv(Task& t, const SyscallArgs& a);
SyscallReturn SysMembarrier(Task& t, const SyscallArgs& a);
SyscallReturn SysMseal(Task& t, const SyscallArgs& a);
SyscallReturn SysCachestat(Task& t, const SyscallArgs& a);
SyscallReturn SysGetRobustList(Task& t, const SyscallArgs& a);
SyscallReturn SysGetcpu(Task& t, const SyscallArgs& a);
SyscallReturn SysGetegid(Task& t, const SyscallArgs& a);
SyscallReturn SysGeteuid(Task& t, const SyscallArgs& a);
SyscallReturn SysGetgid(Task& t, const SyscallArgs& a);
SyscallReturn SysGetgroups(Task& t, const SyscallArgs& a);
SyscallReturn SysGetitimer(Task& t, const SyscallArgs& a);
SyscallReturn SysGetpgid(Task& t, const SyscallArgs& a);
SyscallReturn SysGetpgrp(Task& t, const SyscallArgs& a);
SyscallReturn SysGetpid(Task& t, const SyscallArgs& a);
SyscallReturn SysGetppid(Task& t, const SyscallArgs& a);
SyscallReturn SysGetpriority(Task& t, const SyscallArgs& a);
SyscallReturn SysGetrandom(Task& t, const SyscallArgs& a);
SyscallReturn SysGetresgid(Task& t, const SyscallArgs& a);
SyscallReturn SysGetresuid(Task& t, const SyscallArgs& a);
SyscallReturn SysGetrlimit(Task& t, const SyscallArgs& a);
SyscallReturn SysGetrusage(Task& t, const SyscallArgs& a);
SyscallReturn SysGetsid(Task& t, const SyscallArgs& a);
SyscallReturn SysGettid(Task& t, const SyscallArgs& a);
SyscallReturn SysGettimeofday(Task& t, const SyscallArgs& a);
SyscallReturn SysGetuid(Task& t, const SyscallArgs& a);
SyscallReturn SysKill(Task& t, const SyscallArgs& a);
SyscallReturn SysMadvise(Task& t, const SyscallArgs& a);
SyscallReturn SysMincore(Task& t, const SyscallArgs& a);
SyscallReturn SysMlock(Task& t, const SyscallArgs& a);
SyscallReturn SysMlockall(Task& t, const SyscallArgs& a);
SyscallReturn SysMmap(Task& t, const SyscallArgs& a);
SyscallReturn SysMprotect(Task& t, const SyscallArgs& a);
SyscallReturn SysMremap(Task& t, const SyscallArgs& a);
SyscallReturn SysMsync(Task& t, const SyscallArgs& a);
SyscallReturn SysMunlock(Task& t, const SyscallArgs& a);
SyscallReturn SysMunlockall(Task& t, const SyscallArgs& a);
SyscallReturn SysMunmap(Task& t, const SyscallArgs& a);
SyscallReturn SysNanosleep(Task& t, const SyscallArgs& a);
SyscallReturn SysRestartSyscall(Task& t, const SyscallArgs& a);
SyscallReturn SysPause(Task& t, const SyscallArgs& a);
SyscallReturn SysKcmp(Task& t, const SyscallArgs& a);
SyscallReturn SysPidfdGetfd(Task& t, const SyscallArgs& a);
SyscallReturn SysPidfdOpen(Task& t, const SyscallArgs& a);
SyscallReturn SysPidfdSendSignal(Task& t, const SyscallArgs& a);
SyscallReturn SysPrctl(Task& t, const SyscallArgs& a);
SyscallReturn SysPersonality(Task& t, const SyscallArgs& a);
SyscallReturn SysPrlimit64(Task& t, const SyscallArgs& a);
SyscallReturn SysRtSigaction(Task& t, const SyscallArgs& a);
SyscallReturn SysRtSigpending(Task& t, const SyscallArgs& a);
SyscallReturn SysRtSigprocmask(Task& t, const SyscallArgs& a);
SyscallReturn SysRtSigqueueinfo(Task& t, const SyscallArgs& a);
SyscallReturn SysRtSigreturn(Task& t, const SyscallArgs& a);
SyscallReturn SysRtSigsuspend(Task& t, const SyscallArgs& a);
SyscallReturn SysRtSigtimedwait(Task& t, const SyscallArgs& a);
SyscallReturn SysRtTgsigqueueinfo(Task& t, const SyscallArgs& a);
SyscallReturn SysSchedGetPriorityMax(Task& t, const SyscallArgs& a);
SyscallReturn SysSchedGetPriorityMin(Task& t, const SyscallArgs& a);
SyscallReturn SysSchedGetaffinity(Task& t, const SyscallArgs& a);
SyscallReturn SysSchedGetattr(Task& t, const SyscallArgs& a);
SyscallReturn SysSchedSetattr(Task& t, const SyscallArgs& a);
SyscallReturn SysSchedGetparam(Task& t, const SyscallArgs& a);
SyscallReturn SysSchedGetscheduler(Task& t, const SyscallArgs& a);
SyscallReturn SysSchedSetaffinity(Task& t, const SyscallArgs& a);
SyscallReturn SysSchedSetparam(Task& t, const SyscallArgs& a);
SyscallReturn SysSchedRrGetInterval(Task& t, const SyscallArgs& a);
SyscallReturn SysSchedSetscheduler(Task& t, const SyscallArgs& a);
SyscallReturn SysSchedYield(Task& t, const SyscallArgs& a);
SyscallReturn SysSetRobustList(Task& t, const SyscallArgs& a);
SyscallReturn SysRseq(Task& t, const SyscallArgs& a);
SyscallReturn SysUnshare(Task& t, const SyscallArgs& a);
SyscallReturn SysMount(Task& t, const SyscallArgs& a);
SyscallReturn SysUmount2(Task& t, const SyscallArgs& a);
SyscallReturn SysPivotRoot(Task& t, const SyscallArgs& a);
SyscallReturn SysSetns(Task& t, const SyscallArgs& a);
SyscallReturn SysSetTidAddress(Task& t, const SyscallArgs& a);
SyscallReturn SysSetdomainname(Task& t, const SyscallArgs& a);
SyscallReturn SysSetfsgid(Task& t, const SyscallArgs& a);
SyscallReturn SysSetfsuid(Task& t, const SyscallArgs& a);
SyscallReturn SysSetgid(Task& t, const SyscallArgs& a);
SyscallReturn SysSetgroups(Task& t, const SyscallArgs& a);
SyscallReturn SysSethostname(Task& t, const SyscallArgs& a);
SyscallReturn SysSetitimer(Task& t, const SyscallArgs& a);
SyscallReturn SysSetpgid(Task& t, const SyscallArgs& a);
SyscallReturn SysSetpriority(Task& t, const SyscallArgs& a);
SyscallReturn SysSetregid(Task& t, const SyscallArgs& a);
SyscallReturn SysSetresgid(Task& t, const SyscallArgs& a);
SyscallReturn SysSetresuid(Task& t, const SyscallArgs& a);
SyscallReturn SysSetreuid(Task& t, const SyscallArgs& a);
SyscallReturn SysSetrlimit(Task& t, const SyscallArgs& a);
SyscallReturn SysSetsid(Task& t, const SyscallArgs& a);
SyscallReturn SysSettimeofday(Task& t, const SyscallArgs& a);
SyscallReturn SysSetuid(Task& t, const SyscallArgs& a);
SyscallReturn SysSigaltstack(Task& t, const SyscallArgs& a);
SyscallReturn SysSysinfo(Task& t, const SyscallArgs& a);
SyscallReturn SysTgkill(Task& t, const SyscallArgs& a);
SyscallReturn SysTime(Task& t, const SyscallArgs& a);
SyscallReturn SysTimerCreate(Task& t, const SyscallArgs& a);
SyscallReturn SysTimerDelete(Task& t, const SyscallArgs& a);
SyscallReturn SysTimerGetoverrun(Task& t, const SyscallArgs& a);
SyscallReturn SysTimerGettime(Task& t, const SyscallArgs& a);
SyscallReturn SysTimerSettime(Task& t, const SyscallArgs& a);
SyscallReturn SysTimes(Task& t, const SyscallArgs& a);
SyscallReturn SysTkill(Task& t, const SyscallArgs& a);
SyscallReturn SysUname(Task& t, const SyscallArgs& a);
SyscallReturn SysVfork(Task& t, const SyscallArgs& a);
SyscallReturn SysWait4(Task& t, const SyscallArgs& a);
SyscallReturn SysWaitid(Task& t, const SyscallArgs& a);

// seccomp(2) and prctl's PR_SET_SECCOMP (sys_seccomp.cc).
SyscallReturn SysSeccomp(Task& t, const SyscallArgs& a);
SyscallReturn PrctlSetSeccomp(Task& t, const SyscallArgs& a);

// System V IPC (sys_sysv.cc).
SyscallReturn SysSemget(Task& t, const SyscallArgs& a);
SyscallReturn SysSemop(Task& t, const SyscallArgs& a);
SyscallReturn SysSemtimedop(Task& t, const SyscallArgs& a);
SyscallReturn SysSemctl(Task& t, const SyscallArgs& a);
SyscallReturn SysShmget(Task& t, const SyscallArgs& a);
SyscallReturn SysShmat(Task& t, const SyscallArgs& a);
SyscallReturn SysShmdt(Task& t, const SyscallArgs& a);
SyscallReturn SysShmctl(Task& t, const SyscallArgs& a);
SyscallReturn SysMsgget(Task& t, const SyscallArgs& a);
SyscallReturn SysMsgsnd(Task& t, const SyscallArgs& a);
SyscallReturn SysMsgrcv(Task& t, const SyscallArgs& a);
SyscallReturn SysMsgctl(Task& t, const SyscallArgs& a);
// sys_mqueue.cc
SyscallReturn SysMqOpen(Task& t, const SyscallArgs& a);
SyscallReturn SysMqUnlink(Task& t, const SyscallArgs& a);
SyscallReturn SysMqTimedsend(Task& t, const SyscallArgs& a);
SyscallReturn SysMqTimedreceive(Task& t, const SyscallArgs& a);
SyscallReturn SysMqNotify(Task& t, const SyscallArgs& a);
SyscallReturn SysMqGetsetattr(Task& t, const SyscallArgs& a);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_HANDLERS_H_
