// systrap_floor: what each piece of a systrap syscall costs on this host,
// measured without the sentry, so that a patched syscall's time can be
// split into the stub's trampoline, the stub <-> sentry handoff and the
// sentry's own work (bench/RESULTS.md, issue 15).
//
//   systrap_floor [ITERS]
//   systrap_floor loop ITERS    only ITERS getppid calls, timed one by one:
//                               getppid (mean) and getppid_p50 lines; for
//                               running in a sandbox under perf
//
// Prints "<metric> <ns>" lines (p50 of single timed operations unless the
// name says otherwise; TSC ticks converted with a CLOCK_MONOTONIC
// calibration):
//   getppid_p50           a native getppid (the floor under everything)
//   sigsys_trap           a getppid that seccomp turns into SIGSYS (the
//                         unpatched path's signal delivery, an empty
//                         handler and rt_sigreturn)
//   xsave, xsaveopt       saving the FP components a signal frame holds
//                         (the mask from a real frame's fpx_sw_bytes) into
//                         a standard-format image, as the fast entry does;
//                         per instruction (p50 of batches of 100)
//   fast_frame            the fast entry's and exit's own work around the
//                         handoff (stub_amd64.S): an indirect jump, the GS
//                         check, pushfq/popfq, 15 register stores and loads,
//                         xsave, rdfsbase/wrfsbase, jump back (p50 of
//                         batches of 100)
//   handoff_spin          a round trip between two processes through a
//                         shared page when both spin (the stub posts, the
//                         sentry sees it and replies, the stub sees that);
//                         ITERS / 10 of them
//   handoff_futex         the same when both sleep in FUTEX_WAIT and each
//                         post is a FUTEX_WAKE (what systrap does while the
//                         host's CPUs are contended)
//   handoff_futex_timed   that, with the sentry side's FUTEX_WAIT timed (100
//                         ms, as SystrapContext::WaitEvent: an hrtimer armed
//                         and cancelled per wait)
//   handoff_futex_1cpu    handoff_futex with both processes pinned to one
//                         CPU (the wakeup is a plain context switch, no IPI)
// Each handoff_* also prints a _p99 line.
#define _GNU_SOURCE
#include <cpuid.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <x86intrin.h>

static double ticks_per_ns;

static uint64_t mono_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void calibrate(void) {
  uint64_t n0 = mono_ns(), t0 = __rdtsc();
  while (mono_ns() - n0 < 20000000) {
  }
  uint64_t n1 = mono_ns(), t1 = __rdtsc();
  ticks_per_ns = (double)(t1 - t0) / (double)(n1 - n0);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void print_p(const char *name, uint64_t *ticks, long n, int p99) {
  qsort(ticks, (size_t)n, sizeof(*ticks), cmp_u64);
  printf("%s %.1f\n", name, (double)ticks[n / 2] / ticks_per_ns);
  if (p99)
    printf("%s_p99 %.1f\n", name, (double)ticks[n * 99 / 100] / ticks_per_ns);
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static long raw_getppid(void) {
  long r;
  __asm__ volatile("mov $110, %%eax; syscall"
                   : "=a"(r)
                   :
                   : "rcx", "r11", "memory");
  return r;
}

// Single calls, timed: prints the p50 (and with `mean`, the mean of the
// whole loop, timing included).
static void bench_getppid(long iters, uint64_t *v, int mean) {
  const uint64_t t0 = __rdtsc();
  for (long i = 0; i < iters; i++) {
    uint64_t t = __rdtsc();
    raw_getppid();
    v[i] = __rdtsc() - t;
  }
  const uint64_t t1 = __rdtsc();
  if (mean)
    printf("getppid_mean %.1f\n",
           (double)(t1 - t0) / ticks_per_ns / (double)iters);
  print_p("getppid_p50", v, iters, 0);
}

// ---- SIGSYS: seccomp RET_TRAP on getppid, in a child ----

static void on_sigsys(int sig, siginfo_t *info, void *uc) {
  (void)sig;
  (void)info;
  ((ucontext_t *)uc)->uc_mcontext.gregs[REG_RAX] = 1;
}

static void bench_sigsys(long iters, uint64_t *v) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0)
    die("fork");
  if (pid == 0) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSYS, &sa, NULL) != 0)
      die("sigaction");
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof(f) / sizeof(f[0]), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
      die("no_new_privs");
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
      die("seccomp");
    for (long i = 0; i < iters; i++) {
      uint64_t t = __rdtsc();
      if (raw_getppid() != 1)
        _exit(3);
      v[i] = __rdtsc() - t;
    }
    print_p("sigsys_trap", v, iters, 0);
    fflush(stdout);
    _exit(0);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "systrap_floor: the SIGSYS child failed (%#x)\n", st);
    exit(1);
  }
}

// ---- XSAVE of a signal frame's components ----

static uint64_t frame_xfeatures;
static uint32_t frame_xsize;

static void on_usr1(int sig, siginfo_t *info, void *uc) {
  (void)sig;
  (void)info;
  const uint8_t *fp = (const uint8_t *)((ucontext_t *)uc)->uc_mcontext.fpregs;
  uint32_t magic1;
  memcpy(&magic1, fp + 464, 4); // struct _fpx_sw_bytes in the FXSAVE area
  if (magic1 == 0x46505853) {
    memcpy(&frame_xfeatures, fp + 464 + 8, 8);
    memcpy(&frame_xsize, fp + 464 + 16, 4);
  }
}

static void read_frame_features(void) {
  struct sigaction sa, old;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_usr1;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGUSR1, &sa, &old);
  raise(SIGUSR1);
  sigaction(SIGUSR1, &old, NULL);
}

static uint8_t xbuf[16384] __attribute__((aligned(64)));

// Short loops are timed in batches of kBatch: the p50 of the batches, per
// operation (a preemption spoils one batch, not the mean).
enum { kBatch = 100 };
static void print_batches(const char *name, uint64_t *ticks, long n) {
  qsort(ticks, (size_t)n, sizeof(*ticks), cmp_u64);
  printf("%s %.1f\n", name, (double)ticks[n / 2] / ticks_per_ns / kBatch);
}

static void bench_xsave(long iters, uint64_t *v) {
  const uint32_t lo = (uint32_t)frame_xfeatures,
                 hi = (uint32_t)(frame_xfeatures >> 32);
  printf("xsave_features 0x%llx\nxsave_bytes %u\n",
         (unsigned long long)frame_xfeatures, frame_xsize);
  // A ymm register in use, as after any AVX code (glibc's str* and mem*).
  __asm__ volatile("vpcmpeqb %%ymm1, %%ymm1, %%ymm1" : : : "xmm1");
  const long batches = iters / kBatch;
  for (long b = 0; b < batches; b++) {
    uint64_t t = __rdtsc();
    for (int i = 0; i < kBatch; i++)
      __asm__ volatile("xsave %0" : "=m"(xbuf) : "a"(lo), "d"(hi));
    v[b] = __rdtsc() - t;
  }
  print_batches("xsave", v, batches);
  for (long b = 0; b < batches; b++) {
    uint64_t t = __rdtsc();
    for (int i = 0; i < kBatch; i++) {
      __asm__ volatile("xsaveopt %0" : "=m"(xbuf) : "a"(lo), "d"(hi));
    }
    v[b] = __rdtsc() - t;
  }
  print_batches("xsaveopt", v, batches);
}

// The fast entry's and exit's instructions around the handoff, in the same
// order (stub_amd64.S fast_entry/fast_exit), on a frame in ordinary memory.
static uint8_t frame[0x5000] __attribute__((aligned(64)));

static void bench_fast_frame(long iters, uint64_t *v) {
  const uint32_t lo = (uint32_t)frame_xfeatures,
                 hi = (uint32_t)(frame_xfeatures >> 32);
  void *entry_qword[1];
  const long batches = iters / kBatch;
  for (long b = 0; b < batches; b++) {
    uint64_t t = __rdtsc();
    for (int i = 0; i < kBatch; i++) {
      __asm__ volatile(
          "lea 1f(%%rip), %%rcx\n"
          "mov %%rcx, %[q]\n"
          "jmp *%[q]\n" // the site's jump through the table
          "1:\n"
          "rdgsbase %%rcx\n"
          "movabs $-0x7fffc0000000, %%r11\n"
          "lea (%%rcx,%%r11), %%rcx\n"
          "rorx $15, %%rcx, %%rcx\n"
          "mov $14, %%r11d\n"
          "shrx %%r11, %%rcx, %%r11\n"
          "xchg %%rcx, %%r11\n"
          "mov %%rsp, 0x4178(%%rbx)\n"
          "pushfq\n"
          "pop 0x4188(%%rbx)\n"
          "mov %%r8, 0x4100(%%rbx)\n"
          "mov %%r9, 0x4108(%%rbx)\n"
          "mov %%r10, 0x4110(%%rbx)\n"
          "mov %%r12, 0x4120(%%rbx)\n"
          "mov %%r13, 0x4128(%%rbx)\n"
          "mov %%r14, 0x4130(%%rbx)\n"
          "mov %%r15, 0x4138(%%rbx)\n"
          "mov %%rdi, 0x4140(%%rbx)\n"
          "mov %%rsi, 0x4148(%%rbx)\n"
          "mov %%rbp, 0x4150(%%rbx)\n"
          "mov %%rbx, 0x4158(%%rbx)\n"
          "mov %%rdx, 0x4160(%%rbx)\n"
          "mov %%rax, 0x4000(%%rbx)\n"
          "mov %[lo], %%eax\n"
          "mov %[hi], %%edx\n"
          "xsave 0x4400(%%rbx)\n"
          "rdfsbase %%rax\n"
          "mov %%rax, 24(%%rbx)\n"
          // (the handoff happens here)
          "mov 24(%%rbx), %%rax\n"
          "wrfsbase %%rax\n"
          "push 0x4188(%%rbx)\n"
          "mov 0x4100(%%rbx), %%r8\n"
          "mov 0x4108(%%rbx), %%r9\n"
          "mov 0x4110(%%rbx), %%r10\n"
          "mov 0x4120(%%rbx), %%r12\n"
          "mov 0x4128(%%rbx), %%r13\n"
          "mov 0x4130(%%rbx), %%r14\n"
          "mov 0x4138(%%rbx), %%r15\n"
          "mov 0x4140(%%rbx), %%rdi\n"
          "mov 0x4148(%%rbx), %%rsi\n"
          "mov 0x4150(%%rbx), %%rbp\n"
          "mov 0x4160(%%rbx), %%rdx\n"
          "popfq\n"
          "lea 2f(%%rip), %%rcx\n"
          "mov %%rcx, 0x4180(%%rbx)\n"
          "jmp *0x4180(%%rbx)\n" // back to the site's return address
          "2:\n"
          : [q] "=m"(entry_qword[0])
          : "b"(frame), [lo] "m"(lo), [hi] "m"(hi)
          : "rax", "rcx", "rdx", "r11", "memory", "cc");
    }
    v[b] = __rdtsc() - t;
  }
  print_batches("fast_frame", v, batches);
}

// ---- The handoff between two processes ----

struct comm {
  _Alignas(
      64) uint32_t state; // 1: posted by the stub; 2: replied by the sentry
  uint32_t stub_waiting;
  _Alignas(64) uint32_t sentry_waiting;
};

static struct timespec *wait_timeout; // the sentry side's FUTEX_WAIT timeout

static long futex(uint32_t *w, int op, uint32_t v) {
  return syscall(SYS_futex, w, op, v, op == FUTEX_WAIT ? wait_timeout : NULL,
                 NULL, 0);
}

// Sets *word = val and wakes the peer if it said it sleeps.
static void post(struct comm *c, uint32_t val, uint32_t *peer_waiting) {
  __atomic_store_n(&c->state, val, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(peer_waiting, __ATOMIC_SEQ_CST))
    futex(&c->state, FUTEX_WAKE, 1);
}

// Waits until state == want: spins `spin_ticks`, then sleeps.
static void await(struct comm *c, uint32_t want, uint32_t *my_waiting,
                  uint64_t spin_ticks) {
  uint64_t end = __rdtsc() + spin_ticks;
  while (__atomic_load_n(&c->state, __ATOMIC_ACQUIRE) != want) {
    if (__rdtsc() < end) {
      _mm_pause();
      continue;
    }
    __atomic_store_n(my_waiting, 1, __ATOMIC_SEQ_CST);
    uint32_t s = __atomic_load_n(&c->state, __ATOMIC_SEQ_CST);
    if (s != want)
      futex(&c->state, FUTEX_WAIT, s);
    __atomic_store_n(my_waiting, 0, __ATOMIC_RELAXED);
  }
}

static void pin(int cpu) {
  cpu_set_t s;
  CPU_ZERO(&s);
  CPU_SET(cpu, &s);
  sched_setaffinity(0, sizeof(s), &s);
}

static void bench_handoff(const char *name, long iters, uint64_t *v,
                          uint64_t spin_ns, int one_cpu, int timed) {
  struct comm *c = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (c == MAP_FAILED)
    die("mmap");
  const uint64_t spin = (uint64_t)((double)spin_ns * ticks_per_ns);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0)
    die("fork");
  if (pid == 0) {                             // the sentry: answer every post
    struct timespec timeout = {0, 100000000}; // as SystrapContext::WaitEvent
    if (timed)
      wait_timeout = &timeout;
    if (one_cpu)
      pin(0);
    for (long i = 0; i < iters + 100; i++) {
      await(c, 1, &c->sentry_waiting, spin);
      post(c, 2, &c->stub_waiting);
    }
    _exit(0);
  }
  if (one_cpu)
    pin(0);
  for (long i = 0; i < iters + 100; i++) {
    uint64_t t = __rdtsc();
    __atomic_store_n(&c->state, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->sentry_waiting, __ATOMIC_SEQ_CST))
      futex(&c->state, FUTEX_WAKE, 1);
    await(c, 2, &c->stub_waiting, spin);
    if (i >= 100)
      v[i - 100] = __rdtsc() - t;
  }
  waitpid(pid, NULL, 0);
  if (one_cpu) {
    cpu_set_t all;
    CPU_ZERO(&all);
    for (int i = 0; i < CPU_SETSIZE; i++)
      CPU_SET(i, &all);
    sched_setaffinity(0, sizeof(all), &all);
  }
  munmap(c, 4096);
  print_p(name, v, iters, 1);
}

int main(int argc, char **argv) {
  const int loop = argc > 1 && strcmp(argv[1], "loop") == 0;
  long iters = argc > 1 + loop ? strtol(argv[1 + loop], NULL, 10) : 20000;
  if (iters < 100)
    iters = 100;
  uint64_t *v = malloc((size_t)iters * sizeof(uint64_t));
  if (v == NULL)
    die("malloc");
  calibrate();
  if (loop) {
    for (long i = 0; i < 100; i++)
      raw_getppid(); // the site is patched by now
    bench_getppid(iters, v, 1);
    return 0;
  }
  unsigned a, b, c, d;
  const int bmi2_fsgs =
      __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & 1) && (b & (1u << 8));
  read_frame_features();
  bench_getppid(iters, v, 0);
  bench_sigsys(iters, v);
  if (frame_xfeatures != 0) {
    bench_xsave(iters, v);
    if (bmi2_fsgs)
      bench_fast_frame(iters, v);
  }
  // Spinning beside other load takes a scheduler slice per round trip:
  // fewer of those.
  bench_handoff("handoff_spin", iters / 10 < 100 ? 100 : iters / 10, v, 100000,
                0, 0);
  bench_handoff("handoff_futex", iters, v, 0, 0, 0);
  bench_handoff("handoff_futex_timed", iters, v, 0, 0, 1);
  bench_handoff("handoff_futex_1cpu", iters, v, 0, 1, 0);
  return 0;
}
