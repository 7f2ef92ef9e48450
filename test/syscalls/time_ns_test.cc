// Conformance tests for time namespaces (time_namespaces(7);
// kernel/time/namespace.c): unshare(CLONE_NEWTIME) and
// /proc/PID/timens_offsets, clone3(CLONE_NEWTIME), setns(2) into one and
// back, and the offsets in every reading of CLOCK_MONOTONIC and
// CLOCK_BOOTTIME (the syscall, libc's clock_gettime and the vDSO's,
// after exec too, sysinfo(2), /proc/uptime) and every absolute deadline on
// them (clock_nanosleep, timerfd, POSIX timers). Everything that makes a
// namespace runs in a child, so the test process keeps its own.
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr int64_t kNsPerSec = 1000000000LL;
// The offsets the tests write: far beyond any scheduling delay.
constexpr int64_t kMonoOffsetSec = 1000;
constexpr int64_t kBootOffsetSec = 2000;
// How late a reading may be on a loaded machine.
constexpr int64_t kSlackSec = 60;
constexpr char kExecFlag[] = "--time_ns_exec_helper";

int64_t Ns(const timespec& ts) { return ts.tv_sec * kNsPerSec + ts.tv_nsec; }

int64_t SyscallClockNs(clockid_t c) {
  timespec ts{};
  if (syscall(SYS_clock_gettime, c, &ts) != 0) return -1;
  return Ns(ts);
}

int64_t LibcClockNs(clockid_t c) {
  timespec ts{};
  if (clock_gettime(c, &ts) != 0) return -1;
  return Ns(ts);
}

// The vDSO's own clock_gettime, looked up in the image AT_SYSINFO_EHDR
// names (as LTP's parse_vdso does); null if there is none.
using VdsoClockFn = int (*)(clockid_t, timespec*);
VdsoClockFn VdsoClockGettime() {
  const uintptr_t base = getauxval(AT_SYSINFO_EHDR);
  if (base == 0) return nullptr;
  const char* image = reinterpret_cast<const char*>(base);
  const auto* eh = reinterpret_cast<const Elf64_Ehdr*>(image);
  const auto* sh = reinterpret_cast<const Elf64_Shdr*>(image + eh->e_shoff);
  for (int i = 0; i < eh->e_shnum; ++i) {
    if (sh[i].sh_type != SHT_DYNSYM) continue;
    const auto* syms = reinterpret_cast<const Elf64_Sym*>(image + sh[i].sh_offset);
    const char* names = image + sh[sh[i].sh_link].sh_offset;
    for (size_t j = 0; j < sh[i].sh_size / sizeof(Elf64_Sym); ++j) {
      if (strcmp(names + syms[j].st_name, "__vdso_clock_gettime") == 0) {
        return reinterpret_cast<VdsoClockFn>(base + syms[j].st_value);
      }
    }
  }
  return nullptr;
}

// Whether every way of reading `c` (the syscall, libc, the vDSO) is within
// [lo, lo + slack) seconds of `base_ns` + `offset_sec`.
bool ReadsWithOffset(clockid_t c, int64_t base_ns, int64_t offset_sec) {
  const int64_t lo = base_ns + (offset_sec - 1) * kNsPerSec;
  const int64_t hi = base_ns + (offset_sec + kSlackSec) * kNsPerSec;
  auto in = [&](int64_t v) { return v >= lo && v < hi; };
  if (!in(SyscallClockNs(c)) || !in(LibcClockNs(c))) return false;
  if (VdsoClockFn vdso = VdsoClockGettime()) {
    timespec ts{};
    if (vdso(c, &ts) != 0 || !in(Ns(ts))) return false;
  }
  return true;
}

ino_t NsIno(pid_t pid, const char* name) {
  struct stat st {};
  const std::string path = "/proc/" + std::to_string(pid) + "/ns/" + name;
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Re-executed as `kExecFlag INO HOST_NS OFFSET`: exits 0 if it is in time
// namespace INO and reads CLOCK_MONOTONIC every way (the syscall, libc,
// the vDSO) as HOST_NS, a host reading from before the exec, plus OFFSET
// seconds.
__attribute__((constructor)) void MaybeRunExecHelper(int argc, char** argv, char**) {
  if (argc < 2 || strcmp(argv[1], kExecFlag) != 0) return;
  if (argc != 5) _exit(1);
  if (std::to_string(NsIno(getpid(), "time")) != argv[2]) _exit(2);
  _exit(ReadsWithOffset(CLOCK_MONOTONIC, atoll(argv[3]), atoll(argv[4])) ? 0 : 3);
}

// Execs this binary as the helper above; returns only if the exec failed.
void ExecHelper(const std::string& self, ino_t ino, int64_t host_ns, int64_t offset_sec) {
  std::string args[] = {self, kExecFlag, std::to_string(ino), std::to_string(host_ns),
                        std::to_string(offset_sec)};
  char* argv[] = {args[0].data(), args[1].data(), args[2].data(), args[3].data(),
                  args[4].data(), nullptr};
  char* envp[] = {nullptr};
  execve(self.c_str(), argv, envp);
}

std::string ReadText(const std::string& path) { return ReadFile(path); }

bool WriteOffsets(const std::string& text, int* err) {
  const int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    *err = errno;
    return false;
  }
  const ssize_t n = write(fd, text.data(), text.size());
  *err = errno;
  close(fd);
  return n == static_cast<ssize_t>(text.size());
}

#define SKIP_WITHOUT_CAP_SYS_ADMIN() \
  if (!HaveCap(CAP_SYS_ADMIN)) GTEST_SKIP() << "needs CAP_SYS_ADMIN"

// unshare(CLONE_NEWTIME): the caller stays where it is; its offsets file
// shows its children's namespace, writable until a child enters it; the
// child reads every clock with the offsets, REALTIME without.
TEST(TimeNsTest, UnshareOffsetsApplyToChildren) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  ArmHangGuard(120);
  EXPECT_EXIT_CODE(RunInChild([] {
    const ino_t own = NsIno(getpid(), "time");
    if (own == 0 || NsIno(getpid(), "time_for_children") != own) return 1;
    if (unshare(CLONE_NEWTIME) != 0) return 2;
    const ino_t children = NsIno(getpid(), "time_for_children");
    if (NsIno(getpid(), "time") != own || children == own || children == 0) return 3;
    int err = 0;
    if (!WriteOffsets("monotonic " + std::to_string(kMonoOffsetSec) + " 0\nboottime " +
                          std::to_string(kBootOffsetSec) + " 0\n",
                      &err)) {
      return 4;
    }
    const std::string text = ReadText("/proc/self/timens_offsets");
    if (text.find("monotonic") == std::string::npos ||
        text.find(" " + std::to_string(kMonoOffsetSec) + " ") == std::string::npos ||
        text.find(" " + std::to_string(kBootOffsetSec) + " ") == std::string::npos) {
      return 5;
    }
    // The caller itself reads the host's clocks still.
    const int64_t mono = SyscallClockNs(CLOCK_MONOTONIC);
    const int64_t boot = SyscallClockNs(CLOCK_BOOTTIME);
    const int64_t real = SyscallClockNs(CLOCK_REALTIME);
    if (!ReadsWithOffset(CLOCK_MONOTONIC, mono, 0)) return 6;
    struct sysinfo before {};
    sysinfo(&before);
    const int inner = RunInChild([&] {
      if (NsIno(getpid(), "time") != children) return 1;
      if (!ReadsWithOffset(CLOCK_MONOTONIC, mono, kMonoOffsetSec)) return 2;
      if (!ReadsWithOffset(CLOCK_MONOTONIC_COARSE, mono, kMonoOffsetSec)) return 3;
      if (!ReadsWithOffset(CLOCK_BOOTTIME, boot, kBootOffsetSec)) return 4;
      if (!ReadsWithOffset(CLOCK_REALTIME, real, 0)) return 5;
      struct sysinfo si {};
      sysinfo(&si);
      const long up = si.uptime - before.uptime;
      if (up < kBootOffsetSec - 1 || up > kBootOffsetSec + kSlackSec) return 6;
      double proc_up = 0;
      if (sscanf(ReadText("/proc/uptime").c_str(), "%lf", &proc_up) != 1 ||
          proc_up + 2 < si.uptime || proc_up > si.uptime + kSlackSec) {
        return 7;
      }
      // Entered: the offsets are fixed now (frozen_offsets).
      int e = 0;
      if (WriteOffsets("monotonic 1 0", &e) || e != EACCES) return 8;
      return 0;
    });
    if (!WIFEXITED(inner) || WEXITSTATUS(inner) != 0) return 10 + WEXITSTATUS(inner);
    if (WriteOffsets("monotonic 1 0", &err) || err != EACCES) return 20;
    return 0;
  }), 0);
  DisarmHangGuard();
}

// Absolute deadlines of the namespace's clocks: clock_nanosleep,
// timerfd_settime and timer_settime wait until the namespace's time, not
// the host's (which is kMonoOffsetSec earlier).
TEST(TimeNsTest, AbsoluteDeadlinesAreTheNamespaces) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  ArmHangGuard(120);
  EXPECT_EXIT_CODE(RunInChild([] {
    if (unshare(CLONE_NEWTIME) != 0) return 1;
    int err = 0;
    if (!WriteOffsets("1 " + std::to_string(kMonoOffsetSec) + " 0", &err)) return 2;
    const int inner = RunInChild([] {
      const int64_t start = NowMs();
      timespec now{};
      clock_gettime(CLOCK_MONOTONIC, &now);
      timespec until = now;
      until.tv_nsec += 100000000;  // 0.1 s from now
      if (until.tv_nsec >= kNsPerSec) until.tv_sec += 1, until.tv_nsec -= kNsPerSec;
      if (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, nullptr) != 0) return 1;
      // Not before the deadline either.
      if (SyscallClockNs(CLOCK_MONOTONIC) < Ns(until)) return 2;

      const int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
      if (tfd < 0) return 3;
      clock_gettime(CLOCK_MONOTONIC, &now);
      itimerspec its{};
      its.it_value = now;
      its.it_value.tv_nsec += 100000000;
      if (its.it_value.tv_nsec >= kNsPerSec) its.it_value.tv_sec += 1, its.it_value.tv_nsec -= kNsPerSec;
      if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr) != 0) return 4;
      itimerspec left{};
      if (timerfd_gettime(tfd, &left) != 0 || left.it_value.tv_sec > kSlackSec) return 5;
      uint64_t ticks = 0;
      if (read(tfd, &ticks, sizeof(ticks)) != sizeof(ticks) || ticks != 1) return 6;
      // A time past what the clock can hold is never, offset or not
      // (do_timens_ktime_to_host() saturates).
      its.it_value = timespec{static_cast<time_t>(1LL << 40), 0};
      if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr) != 0) return 11;
      pollfd pfd{tfd, POLLIN, 0};
      if (poll(&pfd, 1, 100) != 0) return 12;
      close(tfd);

      timer_t timer;
      sigevent sev{};
      sev.sigev_notify = SIGEV_NONE;
      if (timer_create(CLOCK_MONOTONIC, &sev, &timer) != 0) return 7;
      clock_gettime(CLOCK_MONOTONIC, &now);
      its = itimerspec{};
      its.it_value = now;
      its.it_value.tv_sec += 5;
      if (timer_settime(timer, TIMER_ABSTIME, &its, nullptr) != 0) return 8;
      if (timer_gettime(timer, &left) != 0 || left.it_value.tv_sec > 5 ||
          (left.it_value.tv_sec == 0 && left.it_value.tv_nsec == 0)) {
        return 9;
      }
      timer_delete(timer);
      // All of it in well under the offset.
      if (NowMs() - start > kSlackSec * 1000) return 10;
      return 0;
    });
    if (!WIFEXITED(inner)) return 50;
    return WEXITSTATUS(inner) == 0 ? 0 : 10 + WEXITSTATUS(inner);
  }), 0);
  DisarmHangGuard();
}

// A process of a time namespace that execs reads the offsets through its
// new image's vDSO too; setns(2) back to the initial namespace takes them
// away again, the vDSO's included.
TEST(TimeNsTest, ExecAndSetnsBack) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  ArmHangGuard(120);
  const std::string self = SelfExe();
  EXPECT_EXIT_CODE(RunInChild([&] {
    const int initial = open("/proc/self/ns/time", O_RDONLY | O_CLOEXEC);
    if (initial < 0) return 1;
    if (unshare(CLONE_NEWTIME) != 0) return 2;
    int err = 0;
    if (!WriteOffsets("monotonic " + std::to_string(kMonoOffsetSec) + " 0", &err)) return 3;
    const int64_t host = SyscallClockNs(CLOCK_MONOTONIC);
    const ino_t ns = NsIno(getpid(), "time_for_children");
    // A child, in the namespace since its fork, execs.
    const int exec_status = RunInChild([&] {
      ExecHelper(self, ns, host, kMonoOffsetSec);
      return 9;
    });
    if (!WIFEXITED(exec_status) || WEXITSTATUS(exec_status) != 0) {
      return 40 + WEXITSTATUS(exec_status);
    }
    const int back = RunInChild([&] {
      if (!ReadsWithOffset(CLOCK_MONOTONIC, host, kMonoOffsetSec)) return 1;
      if (setns(initial, CLONE_NEWTIME) != 0) return 2;
      if (!ReadsWithOffset(CLOCK_MONOTONIC, host, 0)) return 3;
      return 0;
    });
    if (!WIFEXITED(back) || WEXITSTATUS(back) != 0) return 10 + WEXITSTATUS(back);
    return 0;
  }), 0);
  DisarmHangGuard();
}

// The process that unshared execs: its new image lives in the namespace
// its children go to (exec_task_namespaces()), as `unshare --time CMD`
// relies on.
TEST(TimeNsTest, ExecEntersTheChildrensNamespace) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  ArmHangGuard(120);
  const std::string self = SelfExe();
  EXPECT_EXIT_CODE(RunInChild([&] {
    if (unshare(CLONE_NEWTIME) != 0) return 1;
    int err = 0;
    if (!WriteOffsets("monotonic " + std::to_string(kMonoOffsetSec) + " 0", &err)) return 2;
    const ino_t ns = NsIno(getpid(), "time_for_children");
    ExecHelper(self, ns, SyscallClockNs(CLOCK_MONOTONIC), kMonoOffsetSec);
    return 9;
  }), 0);
  DisarmHangGuard();
}

// clone3(CLONE_NEWTIME): the child is in a namespace of its own at once
// (so its offsets are fixed), a copy of where the parent's children go.
TEST(TimeNsTest, Clone3NewTime) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  struct clone_args args {};
  args.flags = CLONE_NEWTIME;
  args.exit_signal = SIGCHLD;
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  const long c = syscall(SYS_clone3, &args, sizeof(args));
  ASSERT_GE(c, 0) << ErrnoName(errno);
  if (c == 0) {
    close(go[1]);
    char b;
    (void)!read(go[0], &b, 1);
    _exit(0);
  }
  close(go[0]);
  const ino_t mine = NsIno(getpid(), "time");
  EXPECT_NE(NsIno(c, "time"), mine);
  EXPECT_EQ(NsIno(c, "time_for_children"), NsIno(c, "time"));
  EXPECT_EQ(NsIno(getpid(), "time_for_children"), mine);
  const std::string path = "/proc/" + std::to_string(c) + "/timens_offsets";
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << ErrnoName(errno);
  EXPECT_ERRNO(EACCES, write(fd, "monotonic 1 0", 13));
  close(fd);
  close(go[1]);
  int status = 0;
  ASSERT_EQ(waitpid(c, &status, 0), c);
  EXPECT_EXIT_CODE(status, 0);
}

// proc_timens_set_offset()'s checks: another clock or a fraction of a
// second out of range is EINVAL, an offset that makes the clock negative
// ERANGE, all before the initial namespace's EACCES.
TEST(TimeNsTest, OffsetWriteErrors) {
  SKIP_WITHOUT_CAP_SYS_ADMIN();
  EXPECT_EXIT_CODE(RunInChild([] {
    int err = 0;
    // The initial namespace: its offsets are fixed.
    if (WriteOffsets("monotonic 1 0", &err) || err != EACCES) return 1;
    if (WriteOffsets("realtime 1 0", &err) || err != EINVAL) return 2;
    if (unshare(CLONE_NEWTIME) != 0) return 3;
    if (WriteOffsets("0 1 0", &err) || err != EINVAL) return 4;  // CLOCK_REALTIME
    if (WriteOffsets("monotonic 1 1000000000", &err) || err != EINVAL) return 5;
    if (WriteOffsets("monotonic 1", &err) || err != EINVAL) return 6;
    if (WriteOffsets("monotonic -100000000000 0", &err) || err != ERANGE) return 7;
    if (WriteOffsets("boottime -100000000000 0", &err) || err != ERANGE) return 8;
    // A failed write changed nothing.
    if (ReadText("/proc/self/timens_offsets").find("-100000000000") != std::string::npos) {
      return 9;
    }
    if (!WriteOffsets("monotonic -1 500000000", &err)) return 10;
    return 0;
  }), 0);
}

}  // namespace
}  // namespace syscall_test
