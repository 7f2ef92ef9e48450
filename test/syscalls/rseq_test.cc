// Conformance tests for rseq(2) (kernel/rseq.c): glibc's registration at
// thread start, the CPU numbers the kernel keeps in struct rseq (they must
// agree with getcpu(2): the CPU the thread itself runs on), the argument
// checks of registration and unregistration, what fork, CLONE_VM children
// and exec inherit, and the abort of a critical section that a signal
// interrupts.
#include <errno.h>
#include <linux/rseq.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// The kernel's struct rseq up to mm_cid (glibc 2.36's header stops at
// flags); 32 bytes, the original registration size.
struct alignas(32) KernelRseq {
  uint32_t cpu_id_start;
  uint32_t cpu_id;
  uint64_t rseq_cs;
  uint32_t flags;
  uint32_t node_id;
  uint32_t mm_cid;
  uint32_t pad;
};
static_assert(sizeof(KernelRseq) == 32);

constexpr uint32_t kSig = RSEQ_SIG;
// The length glibc registers its area with (sizeof(struct rseq)); its
// __rseq_size says how much of it the ABI uses (20 in Debian's 2.36), 0
// if the registration failed.
constexpr uint32_t kGlibcLen = 32;
constexpr uint32_t kUninitialized = static_cast<uint32_t>(RSEQ_CPU_ID_UNINITIALIZED);

long Rseq(void* area, uint32_t len, int flags, uint32_t sig) {
  return syscall(SYS_rseq, area, len, flags, sig);
}

// The calling thread's area, which glibc registered at thread start.
KernelRseq* ThreadArea() {
  // SAFETY (test): glibc's documented way to find the thread's area.
  return reinterpret_cast<KernelRseq*>(static_cast<char*>(__builtin_thread_pointer()) +
                                       __rseq_offset);
}

uint32_t LoadCpu(const volatile uint32_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

struct CpuAgreement {
  int stable = 0;  // samples where cpu_id did not change around getcpu()
  int agree = 0;   // of those, how many getcpu() agreed with
  int bad_node = 0;
};

// Samples cpu_id, getcpu(2) and cpu_id again, `n` times. A migration
// between two reads is possible at any time, so only samples whose two
// reads agree count.
CpuAgreement SampleCpu(KernelRseq* rs, int n) {
  CpuAgreement r;
  for (int i = 0; i < n; ++i) {
    const uint32_t before = LoadCpu(&rs->cpu_id);
    unsigned cpu = ~0u, node = ~0u;
    if (syscall(SYS_getcpu, &cpu, &node, nullptr) != 0) continue;
    const uint32_t after = LoadCpu(&rs->cpu_id);
    if (before != after) continue;
    ++r.stable;
    if (cpu == before) {
      ++r.agree;
      if (LoadCpu(&rs->node_id) != node) ++r.bad_node;
    }
  }
  return r;
}

TEST(RseqTest, GlibcRegisteredTheMainThread) {
  ASSERT_GT(__rseq_size, 0u) << "glibc did not register rseq (the kernel refused it)";
  KernelRseq* rs = ThreadArea();
  EXPECT_NE(rs->cpu_id, kUninitialized);
  EXPECT_NE(rs->cpu_id, static_cast<uint32_t>(RSEQ_CPU_ID_REGISTRATION_FAILED));
  EXPECT_LT(rs->cpu_id, static_cast<uint32_t>(sysconf(_SC_NPROCESSORS_CONF)));
  EXPECT_EQ(rs->rseq_cs, 0u);
  // Registering the same area again: it is this thread's already.
  EXPECT_ERRNO(EBUSY, Rseq(rs, kGlibcLen, 0, kSig));
}

TEST(RseqTest, CpuIdAgreesWithGetcpu) {
  ASSERT_GT(__rseq_size, 0u);
  KernelRseq* rs = ThreadArea();
  const CpuAgreement a = SampleCpu(rs, 2000);
  ASSERT_GT(a.stable, 1000);
  // getcpu() reports the CPU the thread ran the syscall on; the area, the
  // CPU it returned to user mode on. Only a migration in between differs.
  EXPECT_GE(a.agree * 100, a.stable * 95) << a.agree << " of " << a.stable;
  EXPECT_EQ(a.bad_node, 0);
  EXPECT_EQ(LoadCpu(&rs->cpu_id_start), LoadCpu(&rs->cpu_id)) << "(unless migrated just now)";
  // glibc's sched_getcpu() reads the area.
  const int c = sched_getcpu();
  EXPECT_GE(c, 0);
  EXPECT_LT(c, sysconf(_SC_NPROCESSORS_CONF));
}

TEST(RseqTest, EveryThreadHasItsOwnArea) {
  ASSERT_GT(__rseq_size, 0u);
  constexpr int kThreads = 4;
  std::atomic<int> ok{0};
  std::thread threads[kThreads];
  for (auto& t : threads) {
    t = std::thread([&ok] {
      KernelRseq* rs = ThreadArea();
      if (rs == ThreadArea() && rs->cpu_id != kUninitialized &&
          rs->cpu_id != static_cast<uint32_t>(RSEQ_CPU_ID_REGISTRATION_FAILED)) {
        // The area follows this thread if in one round of samples its CPU
        // agrees with getcpu(2) (another thread's would agree about half of
        // the time on two CPUs). Rounds, because on a loaded host a burst
        // of migrations can spoil one: each ptrace stop of a syscall is a
        // wakeup the host may place on another CPU, between the getcpu and
        // the return to user mode.
        bool follows = false;
        for (int round = 0; round < 5 && !follows; ++round) {
          const CpuAgreement a = SampleCpu(rs, 500);
          follows = a.stable > 250 && a.agree * 100 >= a.stable * 95;
        }
        if (follows && Rseq(rs, kGlibcLen, 0, kSig) == -1 && errno == EBUSY) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads);
}

TEST(RseqTest, ArgumentChecks) {
  ASSERT_GT(__rseq_size, 0u);
  // In a child: it unregisters glibc's area (fork inherits it).
  EXPECT_EXIT_CODE(RunInChild([] {
                     KernelRseq* rs = ThreadArea();
                     const uint32_t len = kGlibcLen;
                     // Registered: a different area or length is EINVAL, a
                     // different signature EPERM, the same EBUSY.
                     static KernelRseq other;
                     if (Rseq(&other, len, 0, kSig) != -1 || errno != EINVAL) return 1;
                     if (Rseq(rs, len + 32, 0, kSig) != -1 || errno != EINVAL) return 2;
                     if (Rseq(rs, len, 0, kSig + 1) != -1 || errno != EPERM) return 3;
                     if (Rseq(rs, len, 0, kSig) != -1 || errno != EBUSY) return 4;
                     // Unknown flags, alone or with UNREGISTER.
                     if (Rseq(rs, len, 2, kSig) != -1 || errno != EINVAL) return 5;
                     if (Rseq(rs, len, RSEQ_FLAG_UNREGISTER | 2, kSig) != -1 || errno != EINVAL)
                       return 6;
                     // Unregistering needs the same area, length and signature.
                     if (Rseq(&other, len, RSEQ_FLAG_UNREGISTER, kSig) != -1 || errno != EINVAL)
                       return 7;
                     if (Rseq(rs, len + 32, RSEQ_FLAG_UNREGISTER, kSig) != -1 || errno != EINVAL)
                       return 8;
                     if (Rseq(rs, len, RSEQ_FLAG_UNREGISTER, kSig + 1) != -1 || errno != EPERM)
                       return 9;
                     if (Rseq(rs, len, RSEQ_FLAG_UNREGISTER, kSig) != 0) return 10;
                     // Unregistering resets the CPU numbers
                     // (rseq_reset_rseq_cpu_node_id()).
                     if (rs->cpu_id != kUninitialized || rs->cpu_id_start != 0) return 11;
                     if (Rseq(rs, len, RSEQ_FLAG_UNREGISTER, kSig) != -1 || errno != EINVAL)
                       return 12;
                     // A new registration: length and alignment first
                     // (EINVAL), then the address range (EFAULT).
                     static KernelRseq mine[2];
                     char* base = reinterpret_cast<char*>(&mine[0]);
                     if (Rseq(base + 8, 32, 0, kSig) != -1 || errno != EINVAL) return 13;
                     if (Rseq(base, 16, 0, kSig) != -1 || errno != EINVAL) return 14;
                     if (Rseq(base, 31, 0, kSig) != -1 || errno != EINVAL) return 15;
                     if (Rseq(base + 16, 48, 0, kSig) != -1 || errno != EINVAL) return 16;
                     void* kernel = reinterpret_cast<void*>(uint64_t{1} << 47);
                     if (Rseq(kernel, 32, 0, kSig) != -1 || errno != EFAULT) return 17;
                     if (Rseq(reinterpret_cast<void*>(~uint64_t{31}), 32, 0, kSig) != -1 ||
                         errno != EFAULT)
                       return 18;
                     // A good one, with another signature; the kernel fills
                     // in the CPU before the thread runs again.
                     mine[0].cpu_id = kUninitialized;
                     if (Rseq(&mine[0], 32, 0, kSig + 2) != 0) return 19;
                     if (mine[0].cpu_id == kUninitialized) return 20;
                     unsigned cpu = ~0u;
                     for (int i = 0; i < 100; ++i) {
                       const uint32_t before = LoadCpu(&mine[0].cpu_id);
                       syscall(SYS_getcpu, &cpu, nullptr, nullptr);
                       if (before == LoadCpu(&mine[0].cpu_id) && before == cpu) break;
                       if (i == 99) return 21;
                     }
                     if (Rseq(&mine[0], 32, 0, kSig) != -1 || errno != EPERM) return 22;
                     if (Rseq(&mine[0], 32, RSEQ_FLAG_UNREGISTER, kSig + 2) != 0) return 23;
                     // A longer area (a later kernel's fields): 32-byte aligned.
                     if (Rseq(&mine[0], 64, 0, kSig) != 0) return 24;
                     if (Rseq(&mine[0], 64, RSEQ_FLAG_UNREGISTER, kSig) != 0) return 25;
                     return 0;
                   }),
                   0);
}

TEST(RseqTest, ForkInheritsTheRegistration) {
  ASSERT_GT(__rseq_size, 0u);
  EXPECT_EXIT_CODE(RunInChild([] {
                     KernelRseq* rs = ThreadArea();
                     if (Rseq(rs, kGlibcLen, 0, kSig) != -1 || errno != EBUSY) return 1;
                     const CpuAgreement a = SampleCpu(rs, 500);
                     if (a.stable < 250 || a.agree * 100 < a.stable * 95) return 2;
                     // And the child's child.
                     pid_t pid = fork();
                     if (pid == 0) {
                       _exit(Rseq(rs, kGlibcLen, 0, kSig) == -1 && errno == EBUSY ? 0 : 3);
                     }
                     int st;
                     if (pid < 0 || waitpid(pid, &st, 0) != pid) return 4;
                     return WIFEXITED(st) ? WEXITSTATUS(st) : 5;
                   }),
                   0);
}

// A CLONE_VM child (no CLONE_THREAD: it waits for nothing of glibc's) does
// not inherit its parent thread's registration (rseq_fork()). It shares our
// TLS, so our area is the one it tries.
std::atomic<long> vm_child_register{0}, vm_child_unregister{0};
int VmChild(void*) {
  KernelRseq* rs = ThreadArea();
  vm_child_register = syscall(SYS_rseq, rs, kGlibcLen, 0, kSig) == 0 ? 0 : -errno;
  vm_child_unregister =
      syscall(SYS_rseq, rs, kGlibcLen, RSEQ_FLAG_UNREGISTER, kSig) == 0 ? 0 : -errno;
  return 0;
}

TEST(RseqTest, CloneVmDoesNotInherit) {
  ASSERT_GT(__rseq_size, 0u);
  // In a child process, so that the area's reset by the CLONE_VM child's
  // unregistration touches nobody else's.
  EXPECT_EXIT_CODE(RunInChild([] {
                     constexpr size_t kStack = 64 * 1024;
                     void* stack = mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                     if (stack == MAP_FAILED) return 1;
                     vm_child_register = 1;
                     vm_child_unregister = 1;
                     pid_t pid = clone(VmChild, static_cast<char*>(stack) + kStack,
                                       CLONE_VM | SIGCHLD, nullptr);
                     if (pid < 0) return 2;
                     int st;
                     if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return 3;
                     if (vm_child_register != 0) return 4;
                     if (vm_child_unregister != 0) return 5;
                     // Ours is still registered.
                     KernelRseq* rs = ThreadArea();
                     if (Rseq(rs, kGlibcLen, 0, kSig) != -1 || errno != EBUSY) return 6;
                     return 0;
                   }),
                   0);
}

// Run by the image that ExecClearsTheRegistration execs: glibc registers
// the area afresh, which works only if exec dropped the old registration.
TEST(RseqTest, ExecChild) {
  if (getenv("RSEQ_TEST_EXEC_CHILD") == nullptr) GTEST_SKIP() << "run by ExecClearsTheRegistration";
  ASSERT_GT(__rseq_size, 0u);
  KernelRseq* rs = ThreadArea();
  EXPECT_NE(rs->cpu_id, static_cast<uint32_t>(RSEQ_CPU_ID_REGISTRATION_FAILED));
  EXPECT_NE(rs->cpu_id, kUninitialized);
  EXPECT_ERRNO(EBUSY, Rseq(rs, kGlibcLen, 0, kSig));
}

TEST(RseqTest, ExecClearsTheRegistration) {
  ASSERT_GT(__rseq_size, 0u);
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  ASSERT_GT(n, 0);
  exe[n] = '\0';
  const int st = RunInChild([&exe] {
    // A registration at an address the new image will not use for its
    // own: an exec that kept it would make glibc's registration EINVAL.
    static KernelRseq elsewhere;
    KernelRseq* rs = ThreadArea();
    if (Rseq(rs, kGlibcLen, RSEQ_FLAG_UNREGISTER, kSig) != 0) return 100;
    if (Rseq(&elsewhere, 32, 0, kSig) != 0) return 101;
    setenv("RSEQ_TEST_EXEC_CHILD", "1", 1);
    char* const argv[] = {exe, const_cast<char*>("--gtest_filter=RseqTest.ExecChild"), nullptr};
    execv(exe, argv);
    return 102;
  });
  EXPECT_EXIT_CODE(st, 0);
}

// ---- Critical sections ----

volatile sig_atomic_t handler_ran = 0;
volatile uint64_t handler_rip = 0;
volatile sig_atomic_t in_cs = 0;

void RecordRip(int, siginfo_t*, void* ucv) {
  handler_rip = static_cast<uint64_t>(static_cast<ucontext_t*>(ucv)->uc_mcontext.gregs[REG_RIP]);
  handler_ran = 1;
}

// Installs RecordRip for SIGUSR1 for its lifetime.
class RecordRipOnSigusr1 {
 public:
  RecordRipOnSigusr1() {
    struct sigaction sa {};
    sa.sa_sigaction = RecordRip;
    sa.sa_flags = SA_SIGINFO;
    ok_ = sigaction(SIGUSR1, &sa, &old_) == 0;
  }
  ~RecordRipOnSigusr1() {
    if (ok_) sigaction(SIGUSR1, &old_, nullptr);
  }
  bool ok() const { return ok_; }

 private:
  struct sigaction old_ {};
  bool ok_ = false;
};

// Sends `target` SIGUSR1 a little after it entered the critical section
// (a signal just before it is possible but rare: that attempt commits).
std::thread SignalInside(pthread_t target) {
  return std::thread([target] {
    while (!in_cs) usleep(100);
    usleep(2000);
    pthread_kill(target, SIGUSR1);
  });
}

// Enters a critical section that spins until the signal handler has run.
// Returns 1 if the section was aborted after the handler ran (the kernel
// sent the handler's return to the abort handler), 0 if the section
// committed: the handler returned into the middle of it. An abort before
// the signal (preemption, migration) enters the section again. *abort_ip
// is the abort handler's address.
int SpinInCriticalSection(KernelRseq* rs, uint64_t* abort_ip) {
  int aborted;
  uint64_t abort_addr;
  __asm__ __volatile__(
      ".pushsection .data.rseq_test_cs, \"aw\"\n"
      ".balign 32\n"
      "7:\n"
      ".long 0, 0\n"                 // version, flags
      ".quad 1f, (2f - 1f), 4f\n"    // start_ip, post_commit_offset, abort_ip
      ".popsection\n"
      "leaq 4f(%%rip), %[abort_addr]\n"
      "5:\n"
      "leaq 7b(%%rip), %%rax\n"
      "movq %%rax, 8(%[rs])\n"       // rs->rseq_cs = &descriptor
      "movl $1, %[in_cs]\n"
      "1:\n"                         // start_ip
      "cmpl $0, %[ran]\n"
      "je 1b\n"
      "2:\n"                         // post-commit: the handler returned here
      "movl $0, %[aborted]\n"
      "jmp 6f\n"
      ".byte 0x0f, 0xb9, 0x3d\n"     // ud1 <sig>(%rip), %edi: the signature
      ".long 0x53053053\n"
      "4:\n"                         // abort_ip
      "cmpl $0, %[ran]\n"
      "je 5b\n"                      // aborted before the signal: again
      "movl $1, %[aborted]\n"
      "6:\n"
      "movl $0, %[in_cs]\n"
      : [aborted] "=&r"(aborted), [abort_addr] "=&r"(abort_addr), [in_cs] "=m"(in_cs)
      : [rs] "r"(rs), [ran] "m"(handler_ran)
      : "rax", "memory", "cc");
  *abort_ip = abort_addr;
  return aborted;
}

TEST(RseqTest, SignalAbortsTheCriticalSection) {
  ASSERT_GT(__rseq_size, 0u);
  RecordRipOnSigusr1 handler;
  ASSERT_TRUE(handler.ok());
  KernelRseq* rs = ThreadArea();
  int aborted = 0;
  uint64_t abort_ip = 0;
  for (int attempt = 0; attempt < 5 && !aborted; ++attempt) {
    handler_ran = 0;
    handler_rip = 0;
    in_cs = 0;
    std::thread killer = SignalInside(pthread_self());
    aborted = SpinInCriticalSection(rs, &abort_ip);
    killer.join();
    if (aborted) {
      // The frame the handler saw resumes at the abort handler, not inside
      // the section (rseq_signal_deliver() before setup_rt_frame()).
      EXPECT_EQ(handler_rip, abort_ip);
    }
  }
  EXPECT_EQ(aborted, 1) << "the signal handler returned into the critical section";
  // The kernel cleared the descriptor pointer when it aborted.
  EXPECT_EQ(rs->rseq_cs, 0u);
}

// Outside its section, a stale descriptor pointer is harmless: the kernel
// clears it lazily (rseq_ip_fixup(): clear_rseq_cs()).
TEST(RseqTest, StaleDescriptorIsCleared) {
  ASSERT_GT(__rseq_size, 0u);
  RecordRipOnSigusr1 handler;
  ASSERT_TRUE(handler.ok());
  KernelRseq* rs = ThreadArea();
  uint64_t abort_ip;
  handler_ran = 1;  // the section commits at once
  ASSERT_EQ(SpinInCriticalSection(rs, &abort_ip), 0);
  EXPECT_NE(rs->rseq_cs, 0u);  // stale
  handler_ran = 0;
  ASSERT_OK(raise(SIGUSR1));  // a signal delivery looks at it
  EXPECT_EQ(handler_ran, 1);
  EXPECT_NE(handler_rip, abort_ip);
  EXPECT_EQ(rs->rseq_cs, 0u);
}

// A descriptor whose abort handler lacks the registered signature is
// SIGSEGV when a signal is delivered inside the section.
TEST(RseqTest, BadSignatureIsSigsegv) {
  ASSERT_GT(__rseq_size, 0u);
  const int st = RunInChild([] {
    RecordRipOnSigusr1 handler;
    // Unregister glibc's area and register ours with another signature.
    KernelRseq* rs = ThreadArea();
    if (Rseq(rs, kGlibcLen, RSEQ_FLAG_UNREGISTER, kSig) != 0) return 1;
    if (Rseq(rs, kGlibcLen, 0, kSig + 1) != 0) return 2;
    handler_ran = 0;
    in_cs = 0;
    SignalInside(pthread_self()).detach();
    uint64_t abort_ip;
    SpinInCriticalSection(rs, &abort_ip);
    return 3;
  });
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) << "wait status " << st;
}

// The same check outside any critical section: a descriptor pointer whose
// abort handler lacks the registered signature is SIGSEGV at the thread's
// next return to user mode after it slept (rseq_ip_fixup() validates the
// descriptor before it looks where the thread is). In the sandbox the host
// checks the stub thread that runs the guest: it sleeps while the sentry
// runs the guest's nanosleep and dies of that SIGSEGV when it wakes, inside
// the stub's signal handler (SIGSEGV blocked), which kills the stub
// process. That death is the guest's SIGSEGV; it was reported as SIGKILL.
// (No handler here: Linux 6.18 delivers this SIGSEGV to one, which the
// sandbox cannot once the host process is gone; sentry/kernel/task_rseq.cc.)
TEST(RseqTest, BadSignatureAfterASleepIsSigsegv) {
  if (SandboxHostBefore(6, 15)) GTEST_SKIP() << "host < 6.15: no PIDFD_INFO_EXIT to tell a SIGSEGV";
  ASSERT_GT(__rseq_size, 0u);
  // A descriptor whose abort_ip is preceded by RSEQ_SIG while the area is
  // registered with another signature; abort_ip lies outside the section.
  alignas(32) static struct rseq_cs bad_cs;
  static uint32_t abort_site[2] = {kSig, 0};
  const int st = RunInChild([] {
    KernelRseq* rs = ThreadArea();
    if (Rseq(rs, kGlibcLen, RSEQ_FLAG_UNREGISTER, kSig) != 0) return 1;
    if (Rseq(rs, kGlibcLen, 0, kSig + 1) != 0) return 2;
    bad_cs.version = 0;
    bad_cs.flags = 0;
    bad_cs.start_ip = reinterpret_cast<uint64_t>(&ThreadArea);
    bad_cs.post_commit_offset = 1;
    bad_cs.abort_ip = reinterpret_cast<uint64_t>(&abort_site[1]);
    __atomic_store_n(&rs->rseq_cs, reinterpret_cast<uint64_t>(&bad_cs), __ATOMIC_RELEASE);
    for (int i = 0; i < 20; ++i) {
      // A raw nanosleep: the thread sleeps, so it leaves user mode through
      // the scheduler and returns with the rseq check pending.
      const timespec ts{0, 10'000'000};
      syscall(SYS_nanosleep, &ts, nullptr);
    }
    return 3;
  });
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) << "wait status " << st;
}

}  // namespace
}  // namespace syscall_test
