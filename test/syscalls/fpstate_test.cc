// A task's FP/SSE/AVX state is part of the task: MXCSR, the x87 control
// word, xmm0-15 and (where the CPU has AVX) the upper halves of ymm0-15
// survive syscalls, are copied by fork() and by clone(CLONE_THREAD) (Linux:
// fpu_clone() copies the creator's state), are saved in the signal frame and
// restored at rt_sigreturn while the handler starts from a clean state
// (fpu__clear_user_states()), and are reset by execve() (fpu_flush_thread()).
//
// The registers are set and read back inside one asm statement around the
// raw syscall, so that no compiler-generated code runs in between.
#include <cpuid.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr uint32_t kDefaultMxcsr = 0x1f80;
constexpr uint16_t kDefaultFcw = 0x37f;
constexpr uint32_t kTestMxcsr = 0x7f80;  // round toward zero, all masked
constexpr uint16_t kTestFcw = 0x0f7f;    // round toward zero, 64-bit precision

// The layout the asm below uses: 16 vector registers of 32 bytes (the low
// 16 are the xmm register, the high 16 the ymm upper half), then MXCSR and
// the x87 control word.
struct alignas(64) FpRegs {
  uint8_t v[16][32];
  uint32_t mxcsr;
  uint16_t fcw;
};
static_assert(offsetof(FpRegs, mxcsr) == 512 && offsetof(FpRegs, fcw) == 516);

bool HaveAvx() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  if (!(c & bit_OSXSAVE) || !(c & bit_AVX)) return false;
  uint32_t lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & 6) == 6;  // the OS enabled XMM and YMM state
}

// Where XSAVE's standard format puts the AVX (ymm upper) component.
uint32_t AvxXsaveOffset() {
  unsigned a, b, c, d;
  __cpuid_count(0xd, 2, a, b, c, d);
  return b;
}

FpRegs Pattern(uint8_t seed, uint32_t mxcsr, uint16_t fcw) {
  FpRegs r{};
  for (int i = 0; i < 16; ++i) {
    for (int j = 0; j < 32; ++j) r.v[i][j] = static_cast<uint8_t>(seed + 16 * i + j * 7 + 1);
  }
  r.mxcsr = mxcsr;
  r.fcw = fcw;
  return r;
}

#define SV_REP16(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) \
                    M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define SV_LOAD_XMM(i) "movdqu " #i "*32(%[in]), %%xmm" #i "\n\t"
#define SV_STORE_XMM(i) "movdqu %%xmm" #i ", " #i "*32(%[out])\n\t"
#define SV_LOAD_YMM(i) "vmovdqu " #i "*32(%[in]), %%ymm" #i "\n\t"
#define SV_STORE_YMM(i) "vmovdqu %%ymm" #i ", " #i "*32(%[out])\n\t"
#define SV_XMM_CLOBBERS                                                              \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
      "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

// Loads `in` into the FP registers, makes syscall `nr`, stores the registers
// into `out` (in the parent and, for fork, in the child) and returns the raw
// result. MXCSR and the control word are back at their defaults afterwards.
long FpSyscall(const FpRegs& in, FpRegs& out, bool avx, long nr, long a0 = 0, long a1 = 0,
               long a2 = 0) {
  long ret;
  if (avx) {
    asm volatile(
        "ldmxcsr 512(%[in])\n\t"
        "fldcw 516(%[in])\n\t" SV_REP16(SV_LOAD_YMM) "syscall\n\t" SV_REP16(SV_STORE_YMM)
        "stmxcsr 512(%[out])\n\t"
        "fnstcw 516(%[out])\n\t"
        "vzeroupper\n\t"
        : "=a"(ret)
        : [in] "r"(&in), [out] "r"(&out), "a"(nr), "D"(a0), "S"(a1), "d"(a2)
        : "rcx", "r11", "memory", SV_XMM_CLOBBERS);
  } else {
    asm volatile(
        "ldmxcsr 512(%[in])\n\t"
        "fldcw 516(%[in])\n\t" SV_REP16(SV_LOAD_XMM) "syscall\n\t" SV_REP16(SV_STORE_XMM)
        "stmxcsr 512(%[out])\n\t"
        "fnstcw 516(%[out])\n\t"
        : "=a"(ret)
        : [in] "r"(&in), [out] "r"(&out), "a"(nr), "D"(a0), "S"(a1), "d"(a2)
        : "rcx", "r11", "memory", SV_XMM_CLOBBERS);
  }
  const uint32_t mxcsr = kDefaultMxcsr;
  const uint16_t fcw = kDefaultFcw;
  asm volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(mxcsr), "m"(fcw));
  return ret;
}

// Compares what a side saw with what was loaded; "" if equal.
std::string Diff(const FpRegs& want, const FpRegs& got, bool avx) {
  std::string d;
  char buf[128];
  if (got.mxcsr != want.mxcsr) {
    snprintf(buf, sizeof(buf), "MXCSR %#x, want %#x; ", got.mxcsr, want.mxcsr);
    d += buf;
  }
  if (got.fcw != want.fcw) {
    snprintf(buf, sizeof(buf), "FCW %#x, want %#x; ", got.fcw, want.fcw);
    d += buf;
  }
  for (int i = 0; i < 16; ++i) {
    if (memcmp(got.v[i], want.v[i], 16) != 0) {
      snprintf(buf, sizeof(buf), "xmm%d differs (first byte %#x, want %#x); ", i, got.v[i][0],
               want.v[i][0]);
      d += buf;
    }
    if (avx && memcmp(got.v[i] + 16, want.v[i] + 16, 16) != 0) {
      snprintf(buf, sizeof(buf), "ymm%d upper half differs (first byte %#x, want %#x); ", i,
               got.v[i][16], want.v[i][16]);
      d += buf;
    }
  }
  return d;
}

class FpStateTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    avx_ = GetParam();
    if (avx_ && !HaveAvx()) GTEST_SKIP() << "this CPU (or its OS) has no AVX: ymm cases skipped";
  }
  bool avx_ = false;
};

TEST_P(FpStateTest, SurvivesSyscall) {
  const FpRegs in = Pattern(3, kTestMxcsr, kTestFcw);
  FpRegs out{};
  EXPECT_EQ(FpSyscall(in, out, avx_, SYS_getppid), getppid());
  EXPECT_EQ(Diff(in, out, avx_), "");
}

TEST_P(FpStateTest, ForkChildAndParentKeepState) {
  int fds[2];
  ASSERT_OK(pipe(fds));
  const FpRegs in = Pattern(5, kTestMxcsr, kTestFcw);
  FpRegs out{};
  long pid = FpSyscall(in, out, avx_, SYS_fork);
  if (pid == 0) {
    // The child: hand what it saw to the parent.
    ssize_t n = write(fds[1], &out, sizeof(out));
    _exit(n == sizeof(out) ? 0 : 1);
  }
  ASSERT_GT(pid, 0) << "fork: " << ErrnoName(static_cast<int>(-pid));
  close(fds[1]);
  FpRegs child{};
  ssize_t n = read(fds[0], &child, sizeof(child));
  close(fds[0]);
  int status;
  ASSERT_EQ(waitpid(static_cast<pid_t>(pid), &status, 0), pid);
  EXPECT_EXIT_CODE(status, 0);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(child)));
  EXPECT_EQ(Diff(in, child, avx_), "") << "in the child";
  EXPECT_EQ(Diff(in, out, avx_), "") << "in the parent";
}

// A raw clone(CLONE_VM|CLONE_THREAD): the new thread stores its registers
// into *child_out and exits in the same asm, without touching its stack.
long CloneThreadFp(const FpRegs& in, FpRegs& out, FpRegs* child_out, bool avx,
                   volatile int* ctid, void* stack_top) {
  constexpr long kFlags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                          CLONE_SYSVSEM | CLONE_CHILD_CLEARTID;
  register long r10 asm("r10") = reinterpret_cast<long>(ctid);
  register long r8 asm("r8") = 0;
  register FpRegs* r12 asm("r12") = child_out;
  long ret;
  if (avx) {
    asm volatile(
        "ldmxcsr 512(%[in])\n\t"
        "fldcw 516(%[in])\n\t" SV_REP16(SV_LOAD_YMM) "syscall\n\t"
        "test %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        // The new thread.
        "vmovdqu %%ymm0, 0*32(%%r12)\n\t vmovdqu %%ymm1, 1*32(%%r12)\n\t"
        "vmovdqu %%ymm2, 2*32(%%r12)\n\t vmovdqu %%ymm3, 3*32(%%r12)\n\t"
        "vmovdqu %%ymm4, 4*32(%%r12)\n\t vmovdqu %%ymm5, 5*32(%%r12)\n\t"
        "vmovdqu %%ymm6, 6*32(%%r12)\n\t vmovdqu %%ymm7, 7*32(%%r12)\n\t"
        "vmovdqu %%ymm8, 8*32(%%r12)\n\t vmovdqu %%ymm9, 9*32(%%r12)\n\t"
        "vmovdqu %%ymm10, 10*32(%%r12)\n\t vmovdqu %%ymm11, 11*32(%%r12)\n\t"
        "vmovdqu %%ymm12, 12*32(%%r12)\n\t vmovdqu %%ymm13, 13*32(%%r12)\n\t"
        "vmovdqu %%ymm14, 14*32(%%r12)\n\t vmovdqu %%ymm15, 15*32(%%r12)\n\t"
        "stmxcsr 512(%%r12)\n\t"
        "fnstcw 516(%%r12)\n\t"
        "mov $60, %%eax\n\t"  // SYS_exit: this thread only
        "xor %%edi, %%edi\n\t"
        "syscall\n\t"
        "ud2\n"
        "1:\n\t" SV_REP16(SV_STORE_YMM)
        "stmxcsr 512(%[out])\n\t"
        "fnstcw 516(%[out])\n\t"
        "vzeroupper\n\t"
        : "=a"(ret)
        : [in] "r"(&in), [out] "r"(&out), "a"(SYS_clone), "D"(kFlags), "S"(stack_top), "d"(0),
          "r"(r10), "r"(r8), "r"(r12)
        : "rcx", "r11", "memory", SV_XMM_CLOBBERS);
  } else {
    asm volatile(
        "ldmxcsr 512(%[in])\n\t"
        "fldcw 516(%[in])\n\t" SV_REP16(SV_LOAD_XMM) "syscall\n\t"
        "test %%rax, %%rax\n\t"
        "jnz 1f\n\t"
        "movdqu %%xmm0, 0*32(%%r12)\n\t movdqu %%xmm1, 1*32(%%r12)\n\t"
        "movdqu %%xmm2, 2*32(%%r12)\n\t movdqu %%xmm3, 3*32(%%r12)\n\t"
        "movdqu %%xmm4, 4*32(%%r12)\n\t movdqu %%xmm5, 5*32(%%r12)\n\t"
        "movdqu %%xmm6, 6*32(%%r12)\n\t movdqu %%xmm7, 7*32(%%r12)\n\t"
        "movdqu %%xmm8, 8*32(%%r12)\n\t movdqu %%xmm9, 9*32(%%r12)\n\t"
        "movdqu %%xmm10, 10*32(%%r12)\n\t movdqu %%xmm11, 11*32(%%r12)\n\t"
        "movdqu %%xmm12, 12*32(%%r12)\n\t movdqu %%xmm13, 13*32(%%r12)\n\t"
        "movdqu %%xmm14, 14*32(%%r12)\n\t movdqu %%xmm15, 15*32(%%r12)\n\t"
        "stmxcsr 512(%%r12)\n\t"
        "fnstcw 516(%%r12)\n\t"
        "mov $60, %%eax\n\t"
        "xor %%edi, %%edi\n\t"
        "syscall\n\t"
        "ud2\n"
        "1:\n\t" SV_REP16(SV_STORE_XMM)
        "stmxcsr 512(%[out])\n\t"
        "fnstcw 516(%[out])\n\t"
        : "=a"(ret)
        : [in] "r"(&in), [out] "r"(&out), "a"(SYS_clone), "D"(kFlags), "S"(stack_top), "d"(0),
          "r"(r10), "r"(r8), "r"(r12)
        : "rcx", "r11", "memory", SV_XMM_CLOBBERS);
  }
  const uint32_t mxcsr = kDefaultMxcsr;
  const uint16_t fcw = kDefaultFcw;
  asm volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(mxcsr), "m"(fcw));
  return ret;
}

TEST_P(FpStateTest, NewThreadGetsCreatorsState) {
  const FpRegs in = Pattern(7, kTestMxcsr, kTestFcw);
  FpRegs out{};
  static FpRegs child;
  memset(&child, 0, sizeof(child));
  std::vector<char> stack(64 * 1024);
  static volatile int ctid;
  ctid = 1;  // CLONE_CHILD_CLEARTID zeroes it when the thread has exited
  long tid = CloneThreadFp(in, out, &child, avx_, &ctid, stack.data() + stack.size());
  ASSERT_GT(tid, 0) << "clone: " << ErrnoName(static_cast<int>(-tid));
  for (int v; (v = ctid) != 0;) {
    syscall(SYS_futex, &ctid, FUTEX_WAIT, v, nullptr, nullptr, 0);
  }
  EXPECT_EQ(Diff(in, child, avx_), "") << "in the new thread";
  EXPECT_EQ(Diff(in, out, avx_), "") << "in the creator";
}

// Threads at once, each keeping its own FP state across syscalls. On kvm
// threads beyond the VM's vCPUs share them (fpstate_kvm_2vcpus: 8 threads
// on 2), and every switch moves FP state between vCPUs and threads
// (platform/kvm/README.md, "vCPUs").
TEST_P(FpStateTest, ConcurrentThreadsKeepTheirOwnState) {
  constexpr int kThreads = 8, kCalls = 200;
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  const bool avx = avx_;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([t, avx, &bad] {
      const FpRegs in = Pattern(static_cast<uint8_t>(40 + 13 * t), kTestMxcsr, kTestFcw);
      for (int i = 0; i < kCalls; ++i) {
        FpRegs out{};
        FpSyscall(in, out, avx, SYS_sched_yield);
        if (!Diff(in, out, avx).empty()) bad.fetch_add(1);
      }
    });
  }
  for (std::thread& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0) << "syscalls after which a thread's FP registers were not its own";
}

// ---------------------------------------------------------------- signals

// What the handler saw on entry and in its frame.
struct HandlerView {
  uint32_t mxcsr;
  uint16_t fcw;
  FpRegs regs;  // the vector registers on entry (mxcsr/fcw unused)
  uint32_t frame_mxcsr;
  uint8_t frame_xmm[16][16];
  uint32_t frame_magic1;
  uint64_t frame_xfeatures;
  uint8_t frame_ymm_hi[16][16];
  bool frame_has_ymm;
};
HandlerView g_view;
bool g_avx;
FpRegs g_clobber;

void ClobberingHandler(int, siginfo_t*, void* ucv) {
  // Before any compiler-generated vector code: what the kernel gave us.
  asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(g_view.mxcsr), "=m"(g_view.fcw));
  FpRegs* out = &g_view.regs;
  if (g_avx) {
    asm volatile(SV_REP16(SV_STORE_YMM) : : [out] "r"(out) : "memory");
  } else {
    asm volatile(SV_REP16(SV_STORE_XMM) : : [out] "r"(out) : "memory");
  }
  auto* uc = static_cast<ucontext_t*>(ucv);
  auto* fp = reinterpret_cast<const uint8_t*>(uc->uc_mcontext.fpregs);
  memcpy(&g_view.frame_mxcsr, fp + 24, 4);
  for (int i = 0; i < 16; ++i) memcpy(g_view.frame_xmm[i], fp + 160 + 16 * i, 16);
  memcpy(&g_view.frame_magic1, fp + 464, 4);  // struct _fpx_sw_bytes
  memcpy(&g_view.frame_xfeatures, fp + 472, 8);
  g_view.frame_has_ymm = false;
  if (g_view.frame_magic1 == 0x46505853 /* FP_XSTATE_MAGIC1 */ && (g_view.frame_xfeatures & 4)) {
    uint64_t xstate_bv;
    memcpy(&xstate_bv, fp + 512, 8);
    const uint32_t off = AvxXsaveOffset();
    for (int i = 0; i < 16; ++i) {
      if (xstate_bv & 4) {
        memcpy(g_view.frame_ymm_hi[i], fp + off + 16 * i, 16);
      } else {
        memset(g_view.frame_ymm_hi[i], 0, 16);  // the init state
      }
    }
    g_view.frame_has_ymm = true;
  }
  // Now wreck everything; rt_sigreturn must bring the interrupted state back.
  const FpRegs* in = &g_clobber;
  if (g_avx) {
    asm volatile("ldmxcsr 512(%[in])\n\tfldcw 516(%[in])\n\t" SV_REP16(SV_LOAD_YMM)
                 : : [in] "r"(in) : "memory", SV_XMM_CLOBBERS);
  } else {
    asm volatile("ldmxcsr 512(%[in])\n\tfldcw 516(%[in])\n\t" SV_REP16(SV_LOAD_XMM)
                 : : [in] "r"(in) : "memory", SV_XMM_CLOBBERS);
  }
}

TEST_P(FpStateTest, SignalHandlerStartsCleanAndInterruptedStateSurvives) {
  g_avx = avx_;
  g_clobber = Pattern(99, 0x3f80 /* round down */, 0x077f /* round down */);
  memset(&g_view, 0, sizeof(g_view));
  struct sigaction sa {}, old{};
  sa.sa_sigaction = ClobberingHandler;
  sa.sa_flags = SA_SIGINFO;
  ASSERT_OK(sigaction(SIGUSR1, &sa, &old));
  const FpRegs in = Pattern(11, kTestMxcsr, kTestFcw);
  FpRegs out{};
  long r = FpSyscall(in, out, avx_, SYS_tgkill, getpid(), gettid(), SIGUSR1);
  sigaction(SIGUSR1, &old, nullptr);
  ASSERT_EQ(r, 0);

  // The interrupted code gets its registers back (restore_sigcontext()).
  EXPECT_EQ(Diff(in, out, avx_), "") << "after the handler returned";
  // The handler ran with the init state (fpu__clear_user_states()).
  EXPECT_EQ(g_view.mxcsr, kDefaultMxcsr) << "in the handler";
  EXPECT_EQ(g_view.fcw, kDefaultFcw) << "in the handler";
  const FpRegs zero{};
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(memcmp(g_view.regs.v[i], zero.v[i], avx_ ? 32 : 16), 0)
        << (avx_ ? "ymm" : "xmm") << i << " is not zero in the handler";
  }
  // The frame holds the interrupted state (what debuggers and libraries read).
  EXPECT_EQ(g_view.frame_mxcsr, kTestMxcsr) << "uc_mcontext.fpregs->mxcsr";
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(memcmp(g_view.frame_xmm[i], in.v[i], 16), 0) << "uc_mcontext.fpregs->_xmm[" << i
                                                           << "]";
  }
  if (avx_) {
    // With XSAVE the kernel writes the whole XSAVE image (fpx_sw_bytes say so).
    EXPECT_EQ(g_view.frame_magic1, 0x46505853u) << "no FP_XSTATE_MAGIC1 in the frame";
    ASSERT_TRUE(g_view.frame_has_ymm) << "the frame's xfeatures lack AVX";
    for (int i = 0; i < 16; ++i) {
      EXPECT_EQ(memcmp(g_view.frame_ymm_hi[i], in.v[i] + 16, 16), 0)
          << "ymm" << i << " upper half in the frame's XSAVE area";
    }
  }
}

// Threads at once, each interrupted again and again by a signal whose
// handler wrecks the FP registers: each gets its own state back at every
// rt_sigreturn. On kvm the signal's delivery reads the thread's FP state
// (GetFpState) and its return writes it (SetFpState) while other threads
// run, and in fpstate_kvm_2vcpus move theirs between the same two vCPUs.
std::atomic<int> g_wrecks{0};
void WreckingHandler(int) {
  const FpRegs* in = &g_clobber;
  if (g_avx) {
    asm volatile("ldmxcsr 512(%[in])\n\tfldcw 516(%[in])\n\t" SV_REP16(SV_LOAD_YMM)
                 : : [in] "r"(in) : "memory", SV_XMM_CLOBBERS);
  } else {
    asm volatile("ldmxcsr 512(%[in])\n\tfldcw 516(%[in])\n\t" SV_REP16(SV_LOAD_XMM)
                 : : [in] "r"(in) : "memory", SV_XMM_CLOBBERS);
  }
  g_wrecks.fetch_add(1, std::memory_order_relaxed);
}

TEST_P(FpStateTest, ConcurrentThreadsKeepTheirOwnStateAcrossSignals) {
  constexpr int kThreads = 8, kSignals = 60;
  g_avx = avx_;
  g_clobber = Pattern(99, 0x3f80 /* round down */, 0x077f /* round down */);
  g_wrecks = 0;
  struct sigaction sa {}, old{};
  sa.sa_handler = WreckingHandler;
  ASSERT_OK(sigaction(SIGUSR2, &sa, &old));
  std::atomic<int> bad{0}, failed{0};
  std::vector<std::thread> ts;
  const bool avx = avx_;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([t, avx, &bad, &failed] {
      const FpRegs in = Pattern(static_cast<uint8_t>(7 + 29 * t), kTestMxcsr, kTestFcw);
      for (int i = 0; i < kSignals; ++i) {
        FpRegs out{};
        if (FpSyscall(in, out, avx, SYS_tgkill, getpid(), gettid(), SIGUSR2) != 0) {
          failed.fetch_add(1);
        }
        if (!Diff(in, out, avx).empty()) bad.fetch_add(1);
      }
    });
  }
  for (std::thread& t : ts) t.join();
  sigaction(SIGUSR2, &old, nullptr);
  EXPECT_EQ(failed.load(), 0) << "tgkill calls that failed";
  EXPECT_EQ(g_wrecks.load(), kThreads * kSignals) << "handler runs";
  EXPECT_EQ(bad.load(), 0) << "signal returns after which a thread's FP registers were not its own";
}

// A fault handler edits the FP state in its frame; sigreturn installs it.
FpRegs g_edit;
void EditingHandler(int, siginfo_t*, void* ucv) {
  auto* uc = static_cast<ucontext_t*>(ucv);
  uc->uc_mcontext.gregs[REG_RIP] += 2;  // past the ud2
  auto* fp = reinterpret_cast<uint8_t*>(uc->uc_mcontext.fpregs);
  memcpy(fp + 24, &g_edit.mxcsr, 4);
  memcpy(fp + 0, &g_edit.fcw, 2);
  for (int i = 0; i < 16; ++i) memcpy(fp + 160 + 16 * i, g_edit.v[i], 16);
  uint32_t magic;
  uint64_t xfeatures, xstate_bv;
  memcpy(&magic, fp + 464, 4);
  memcpy(&xfeatures, fp + 472, 8);
  if (g_avx && magic == 0x46505853 && (xfeatures & 4)) {
    memcpy(&xstate_bv, fp + 512, 8);
    xstate_bv |= 4;
    memcpy(fp + 512, &xstate_bv, 8);
    const uint32_t off = AvxXsaveOffset();
    for (int i = 0; i < 16; ++i) memcpy(fp + off + 16 * i, g_edit.v[i] + 16, 16);
  }
}

TEST_P(FpStateTest, HandlerCanChangeFpStateThroughFrame) {
  g_avx = avx_;
  g_edit = Pattern(42, kTestMxcsr, kTestFcw);
  struct sigaction sa {}, old{};
  sa.sa_sigaction = EditingHandler;
  sa.sa_flags = SA_SIGINFO;
  ASSERT_OK(sigaction(SIGILL, &sa, &old));
  const FpRegs in = Pattern(1, kDefaultMxcsr, kDefaultFcw);
  FpRegs out{};
  const FpRegs* pin = &in;
  FpRegs* pout = &out;
  if (avx_) {
    asm volatile("ldmxcsr 512(%[in])\n\tfldcw 516(%[in])\n\t" SV_REP16(SV_LOAD_YMM)
                 "ud2\n\t" SV_REP16(SV_STORE_YMM)
                 "stmxcsr 512(%[out])\n\tfnstcw 516(%[out])\n\tvzeroupper\n\t"
                 : : [in] "r"(pin), [out] "r"(pout) : "memory", SV_XMM_CLOBBERS);
  } else {
    asm volatile("ldmxcsr 512(%[in])\n\tfldcw 516(%[in])\n\t" SV_REP16(SV_LOAD_XMM)
                 "ud2\n\t" SV_REP16(SV_STORE_XMM)
                 "stmxcsr 512(%[out])\n\tfnstcw 516(%[out])\n\t"
                 : : [in] "r"(pin), [out] "r"(pout) : "memory", SV_XMM_CLOBBERS);
  }
  const uint32_t mxcsr = kDefaultMxcsr;
  const uint16_t fcw = kDefaultFcw;
  asm volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(mxcsr), "m"(fcw));
  sigaction(SIGILL, &old, nullptr);
  EXPECT_EQ(Diff(g_edit, out, avx_), "") << "after sigreturn";
}

// ---------------------------------------------------------------- execve

constexpr char kExecHelper[] = "--fpstate_exec_helper";

// Runs before main() in the re-executed binary: glibc's start-up code does
// not touch MXCSR or the control word, and ends its AVX routines with
// vzeroupper, so all three are still what execve() left.
__attribute__((constructor)) void MaybeRunExecHelper(int argc, char** argv, char**) {
  if (argc < 2 || strcmp(argv[1], kExecHelper) != 0) return;
  uint32_t mxcsr;
  uint16_t fcw;
  asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(fcw));
  if (mxcsr != kDefaultMxcsr) _exit(10);
  if (fcw != kDefaultFcw) _exit(11);
  if (HaveAvx()) {
    alignas(32) uint8_t y[32];
    asm volatile("vmovdqu %%ymm15, %0\n\tvzeroupper" : "=m"(y));
    for (int i = 16; i < 32; ++i) {
      if (y[i] != 0) _exit(12);
    }
  }
  _exit(0);
}

TEST(FpStateExecTest, ExecveResetsFpState) {
  std::string self = SelfExe();
  int status = RunInChild([&] {
    const uint32_t mxcsr = kTestMxcsr;
    const uint16_t fcw = kTestFcw;
    asm volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(mxcsr), "m"(fcw));
    if (HaveAvx()) {
      alignas(32) uint8_t y[32];
      memset(y, 0x5a, sizeof(y));
      asm volatile("vmovdqu %0, %%ymm15" : : "m"(y) : "xmm15");
    }
    std::string flag = kExecHelper;
    char* argv[] = {self.data(), flag.data(), nullptr};
    char* envp[] = {nullptr};
    syscall(SYS_execve, self.c_str(), argv, envp);
    return 127;
  });
  EXPECT_TRUE(WIFEXITED(status)) << "wait status " << status;
  EXPECT_NE(WEXITSTATUS(status), 10) << "MXCSR survived execve";
  EXPECT_NE(WEXITSTATUS(status), 11) << "the x87 control word survived execve";
  EXPECT_NE(WEXITSTATUS(status), 12) << "ymm15's upper half survived execve";
  EXPECT_EXIT_CODE(status, 0);
}

INSTANTIATE_TEST_SUITE_P(Sse, FpStateTest, ::testing::Values(false));
INSTANTIATE_TEST_SUITE_P(Avx, FpStateTest, ::testing::Values(true));

}  // namespace
}  // namespace syscall_test
