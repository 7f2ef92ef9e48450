// Edge cases of the process and signal syscalls that LTP checks (issue 13):
// SA_RESETHAND keeps the flags (sigaction01), waitpid(INT_MIN) (waitpid04),
// timer_settime without a value (timer_settime02), setpriority's EPERM
// before EACCES (setpriority02), rt_sigqueueinfo to a thread id
// (rt_sigqueueinfo01), pidfd_send_signal's permission check
// (pidfd_send_signal02) and its /proc/PID of a reused id
// (pidfd_send_signal03), STICKY_TIMEOUTS (personality02) and the /proc/sys
// files LTP's library reads (wait403, waitid10), sysinfo against /proc
// (sysinfo01), CPUID faulting as /proc/cpuinfo says (arch_prctl01), alarm
// clocks (timer_settime01).
#include <asm/prctl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/pid_ns_util.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

volatile sig_atomic_t handled;
void CountSignal(int) { handled = handled + 1; }

TEST(ProcessEdgesTest, ResetHandKeepsFlagsAndMask) {
  int status = RunInChild([] {
    struct sigaction sa = {};
    sa.sa_sigaction = [](int, siginfo_t*, void*) { handled = 1; };
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGUSR2);
    if (sigaction(SIGUSR1, &sa, nullptr) != 0) return 1;
    raise(SIGUSR1);
    if (handled != 1) return 2;
    struct sigaction now = {};
    if (sigaction(SIGUSR1, nullptr, &now) != 0) return 3;
    if (now.sa_handler != SIG_DFL) return 4;
    // get_signal() resets the handler alone.
    if (!(now.sa_flags & SA_SIGINFO) || !(now.sa_flags & SA_RESETHAND)) return 5;
    if (!sigismember(&now.sa_mask, SIGUSR2)) return 6;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST(ProcessEdgesTest, WaitpidOfGroupIntMinIsEsrch) {
  EXPECT_ERRNO(ESRCH, waitpid(INT_MIN, nullptr, 0));
  EXPECT_ERRNO(EINVAL, waitpid(-1, nullptr, -1));
}

TEST(ProcessEdgesTest, TimerSettimeWithoutValueIsEinval) {
  timer_t timer;
  struct sigevent ev = {};
  ev.sigev_notify = SIGEV_NONE;
  ASSERT_OK(timer_create(CLOCK_REALTIME, &ev, &timer));
  struct itimerspec old;
  // do_timer_settime(): EINVAL before anything is read.
  EXPECT_ERRNO(EINVAL, syscall(SYS_timer_settime, timer, 0, nullptr, &old));
  EXPECT_ERRNO(EFAULT, syscall(SYS_timer_settime, timer, 0, reinterpret_cast<void*>(8), &old));
  timer_delete(timer);
}

// A child of the (root) test that lives until Release(): the process of
// another user that nobody may touch.
class RootChild {
 public:
  RootChild() {
    if (pipe(go_) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(go_[1]);
      char b;
      (void)!read(go_[0], &b, 1);
      _exit(0);
    }
    close(go_[0]);
  }
  ~RootChild() { Release(); }
  RootChild(const RootChild&) = delete;
  RootChild& operator=(const RootChild&) = delete;

  pid_t pid() const { return pid_; }
  // Lets it exit and reaps it: its wait status, -1 if there was none.
  int Release() {
    if (go_[1] >= 0) close(go_[1]);
    go_[1] = -1;
    int st = -1;
    if (pid_ > 0 && waitpid(pid_, &st, 0) != pid_) st = -1;
    pid_ = -1;
    return st;
  }

 private:
  int go_[2] = {-1, -1};
  pid_t pid_ = -1;
};

// A process of another user: EPERM, whatever the value; our own: EACCES
// only for a raise past RLIMIT_NICE.
TEST(ProcessEdgesTest, SetpriorityOfAnotherUsersProcessIsEperm) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (to become another user)";
  RootChild root_child;
  ASSERT_GT(root_child.pid(), 0) << ErrnoName(errno);
  const pid_t target = root_child.pid();
  EXPECT_EQ(RunAsNobody([target] {
              errno = 0;
              if (setpriority(PRIO_PROCESS, target, -2) != -1 || errno != EPERM) return 2;
              if (setpriority(PRIO_PROCESS, target, 5) != -1 || errno != EPERM) return 3;
              struct rlimit none = {0, 0};
              if (setrlimit(RLIMIT_NICE, &none) != 0) return 4;
              if (setpriority(PRIO_PROCESS, 0, -2) != -1 || errno != EACCES) return 5;
              if (setpriority(PRIO_PROCESS, 0, 3) != 0) return 6;  // lowering is free
              return 0;
            }),
            0);
}

TEST(ProcessEdgesTest, PidfdSendSignalNeedsKillPermission) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root (to become another user)";
  RootChild root_child;
  ASSERT_GT(root_child.pid(), 0) << ErrnoName(errno);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, root_child.pid(), 0));
  ASSERT_GE(pidfd, 0) << ErrnoName(errno);
  EXPECT_EQ(RunAsNobody([pidfd] {
              errno = 0;
              if (syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0) != -1 || errno != EPERM) {
                return 2;
              }
              return 0;
            }),
            0);
  EXPECT_EXIT_CODE(root_child.Release(), 0);  // never signalled
  close(pidfd);
}

// A /proc/PID directory names the process it was opened for: once that
// process is reaped and its id given to another (ns_last_pid, in a pid
// namespace and /proc of the test's own), pidfd_send_signal through it is
// ESRCH and the new process is left alone (pidfd_send_signal03).
TEST(ProcessEdgesTest, PidfdSendSignalThroughAStaleProcDir) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  const pid_t init = ForkWith(CLONE_NEWPID | CLONE_NEWNS);
  ASSERT_GE(init, 0) << ErrnoName(errno);
  if (init == 0) {
    if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) _exit(1);
    if (mount("proc", "/proc", "proc", 0, nullptr) != 0) _exit(2);
    const pid_t a = fork();
    if (a == 0) {
      pause();
      _exit(0);
    }
    char path[32];
    snprintf(path, sizeof(path), "/proc/%d", a);
    const int dir = open(path, O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) _exit(3);
    if (kill(a, SIGKILL) != 0 || waitpid(a, nullptr, 0) != a) _exit(4);
    const int last = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
    char id[16];
    const int n = snprintf(id, sizeof(id), "%d", a - 1);
    if (last < 0 || write(last, id, n) != n) _exit(5);
    int go[2];
    if (pipe(go) != 0) _exit(6);
    const pid_t b = fork();
    if (b == 0) {
      close(go[1]);
      char c;
      (void)!read(go[0], &c, 1);
      _exit(0);
    }
    close(go[0]);
    if (b != a) _exit(7);  // the id came back
    errno = 0;
    const long r = syscall(SYS_pidfd_send_signal, dir, SIGKILL, nullptr, 0);
    const int err = errno;
    close(go[1]);
    int st;
    if (waitpid(b, &st, 0) != b) _exit(8);
    if (r != -1 || err != ESRCH) _exit(9);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) _exit(10);  // b was not killed
    _exit(0);
  }
  EXPECT_EQ(WaitCode(init), 0);
}

// rt_sigqueueinfo(2) takes any thread's id for its process.
TEST(ProcessEdgesTest, RtSigqueueinfoToAThreadId) {
  int status = RunInChild([] {
    signal(SIGUSR1, CountSignal);
    static std::atomic<pid_t> tid{0};
    static std::atomic<bool> done{false};
    pthread_t th;
    pthread_create(
        &th, nullptr,
        [](void*) -> void* {
          tid = static_cast<pid_t>(syscall(SYS_gettid));
          while (!done) usleep(1000);
          return nullptr;
        },
        nullptr);
    while (tid == 0) usleep(1000);
    siginfo_t info = {};
    info.si_signo = SIGUSR1;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    int rc = 0;
    if (syscall(SYS_rt_sigqueueinfo, tid.load(), SIGUSR1, &info) != 0) rc = 1;
    // A positive code is the kernel's: EPERM for another thread's id.
    info.si_code = SI_USER;
    errno = 0;
    if (rc == 0 && (syscall(SYS_rt_sigqueueinfo, tid.load(), SIGUSR1, &info) != -1 ||
                    errno != EPERM)) {
      rc = 2;
    }
    for (int i = 0; i < 1000 && handled == 0; i++) usleep(1000);
    if (rc == 0 && handled != 1) rc = 3;
    done = true;
    pthread_join(th, nullptr);
    return rc;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST(ProcessEdgesTest, StickyTimeoutsKeepSelectsTimeout) {
  int status = RunInChild([] {
    if (personality(static_cast<unsigned long>(PER_LINUX) | STICKY_TIMEOUTS) == -1) return 1;
    struct timeval tv = {0, 10};
    if (select(0, nullptr, nullptr, nullptr, &tv) != 0) return 2;
    if (tv.tv_sec != 0 || tv.tv_usec != 10) return 3;
    if (personality(PER_LINUX) == -1) return 6;
    tv = {0, 10};
    if (select(0, nullptr, nullptr, nullptr, &tv) != 0) return 7;
    if (tv.tv_usec != 0) return 8;  // written back: nothing left
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// sysinfo(2) agrees with /proc/uptime and /proc/loadavg (sysinfo01); the
// /proc files are read before and after, as they may move in between.
TEST(ProcessEdgesTest, SysinfoAgreesWithProc) {
  auto read_proc = [](double* up, double load[3]) {
    ASSERT_EQ(sscanf(ReadFile("/proc/uptime").c_str(), "%lf", up), 1);
    ASSERT_EQ(sscanf(ReadFile("/proc/loadavg").c_str(), "%lf %lf %lf", &load[0], &load[1],
                     &load[2]),
              3);
  };
  double up0 = 0, up1 = 0, load0[3] = {}, load1[3] = {};
  read_proc(&up0, load0);
  struct sysinfo si;
  ASSERT_OK(sysinfo(&si));
  read_proc(&up1, load1);
  EXPECT_GE(si.uptime, static_cast<long>(up0));
  EXPECT_LE(si.uptime, static_cast<long>(up1) + 2);
  for (int i = 0; i < 3; i++) {
    const double got = si.loads[i] / static_cast<double>(1 << SI_LOAD_SHIFT);
    EXPECT_GE(got, std::min(load0[i], load1[i]) - 0.1) << i;
    EXPECT_LE(got, std::max(load0[i], load1[i]) + 0.1) << i;
  }
}

// arch_prctl(ARCH_SET_CPUID) works exactly when /proc/cpuinfo lists
// cpuid_fault (arch_prctl01).
TEST(ProcessEdgesTest, CpuidFaultingAsCpuinfoSays) {
  const std::string info = ReadFile("/proc/cpuinfo");
  const size_t flags = info.find("\nflags");
  ASSERT_NE(flags, std::string::npos);
  const std::string line = info.substr(flags + 1, info.find('\n', flags + 1) - flags - 1) + " ";
  const bool listed = line.find(" cpuid_fault ") != std::string::npos;
  int status = RunInChild([listed] {
    errno = 0;
    const long set = syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    if (listed ? set != 0 : (set != -1 || errno != ENODEV)) return 1;
    // ARCH_GET_CPUID: 1 (CPUID allowed) either way here.
    if (syscall(SYS_arch_prctl, ARCH_GET_CPUID, 0) != 1) return 2;
    return 0;
  });
  SCOPED_TRACE(listed ? "cpuid_fault listed" : "cpuid_fault not listed");
  EXPECT_EXIT_CODE(status, 0);
}

// An alarm clock that takes timers can be read (timer_settime01): both or
// neither, as the host's RTC allows.
TEST(ProcessEdgesTest, AlarmClocksReadableWhereTheyTakeTimers) {
  for (clockid_t c : {CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM}) {
    struct sigevent ev = {};
    ev.sigev_notify = SIGEV_NONE;
    timer_t timer;
    if (syscall(SYS_timer_create, c, &ev, &timer) != 0) continue;  // no RTC, or no CAP_WAKE_ALARM
    struct timespec ts;
    EXPECT_EQ(syscall(SYS_clock_gettime, c, &ts), 0) << c << ": " << ErrnoName(errno);
    EXPECT_EQ(syscall(SYS_clock_getres, c, &ts), 0) << c << ": " << ErrnoName(errno);
    syscall(SYS_timer_delete, timer);
  }
}

// LTP's library reads these before a test runs.
TEST(ProcessEdgesTest, TaintedAndCorePatternExist) {
  std::string tainted = ReadFile("/proc/sys/kernel/tainted");
  ASSERT_FALSE(tainted.empty());
  EXPECT_EQ(tainted.back(), '\n');
  EXPECT_EQ(tainted.find_first_not_of("0123456789\n"), std::string::npos) << tainted;
  std::string pattern = ReadFile("/proc/sys/kernel/core_pattern");
  ASSERT_FALSE(pattern.empty());
  EXPECT_EQ(pattern.find("<error"), std::string::npos) << pattern;
}

}  // namespace
}  // namespace syscall_test
