// The seccomp programs before and after a change (issue 18: libseccomp):
// their sizes, what the host kernel spends per syscall running the sentry's
// program, and what our evaluator (seccomp/bpf_eval.cc) spends on the
// sentry's and the stub's programs. "before" programs come from golden
// dumps (seccomp/testdata/*.golden of an earlier commit), "after" are the
// ones this build installs. One line per metric, "name value":
//
//   seccomp_filter_bench BEFORE_DIR [ITERS]
//
// <call>_p50_<prog>, <call>_p99_<prog>: ns per call (single calls timed),
// in a child that installed <prog> (none, before, after); the calls are the
// sentry's hot path (futex, the table's first rule), getppid (late in the
// table) and membarrier (its last rule).
// eval_<prog>_<case>: ns per Evaluate() call.
#include <linux/audit.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "seccomp/bpf.h"
#include "seccomp/sentry_filter.h"
#include "seccomp/stub_program.h"

namespace {

using seedvisor::seccomp::Evaluate;
using Prog = std::vector<sock_filter>;
constexpr uint64_t kStubText = 0x7fffe0000000;  // as in seccomp/bpf_test.cc's goldens

Prog Load(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    std::fprintf(stderr, "seccomp_filter_bench: cannot read %s\n", path.c_str());
    std::exit(2);
  }
  Prog p;
  unsigned code, jt, jf, k;
  std::string line;
  while (std::getline(f, line)) {
    if (std::sscanf(line.c_str(), "%x %x %x %x", &code, &jt, &jf, &k) != 4) {
      std::fprintf(stderr, "seccomp_filter_bench: %s: bad line \"%s\"\n", path.c_str(), line.c_str());
      std::exit(2);
    }
    p.push_back(sock_filter{static_cast<uint16_t>(code), static_cast<uint8_t>(jt),
                            static_cast<uint8_t>(jf), k});
  }
  return p;
}

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename F>
double NsPerCall(long iters, F f) {
  std::vector<double> batches;
  for (int b = 0; b < 7; ++b) {
    const double t0 = Now();
    for (long i = 0; i < iters; ++i) f();
    batches.push_back((Now() - t0) / static_cast<double>(iters));
  }
  return Median(batches);
}

// Runs the kernel measurements in a child that installed `prog` (none when
// empty) and prints its lines; the filter stays in the child.
void KernelCost(const char* name, const Prog& prog, long iters) {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    if (!prog.empty() && seedvisor::seccomp::Install(prog, /*tsync=*/false) != 0) _exit(3);
    int word = 0;
    // One call at a time (the clock is the vDSO's, no syscall): the median
    // and 99th percentile resist the other load on a shared machine better
    // than a loop's mean does.
    auto time_calls = [&](const char* call, auto f) {
      std::vector<double> one;
      for (long i = 0; i < iters; ++i) {
        const double t0 = Now();
        f();
        one.push_back(Now() - t0);
      }
      std::sort(one.begin(), one.end());
      std::printf("%s_p50_%s %.1f\n%s_p99_%s %.1f\n", call, name, one[one.size() / 2], call,
                  name, one[one.size() * 99 / 100]);
    };
    time_calls("futex", [&] { syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0); });
    time_calls("getppid", [] { syscall(SYS_getppid); });
    time_calls("membarrier", [] { syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0); });
    std::fflush(stdout);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "seccomp_filter_bench: the %s child failed (status %d)\n", name, status);
    std::exit(1);
  }
}

seccomp_data Call(int nr, uint64_t arg1, uint64_t ip) {
  seccomp_data d{};
  d.nr = nr;
  d.arch = AUDIT_ARCH_X86_64;
  d.instruction_pointer = ip;
  d.args[1] = arg1;
  return d;
}

void EvalCost(const char* name, const Prog& sentry, const Prog& stub, long iters) {
  struct Case {
    const char* what;
    const Prog* prog;
    seccomp_data d;
  } cases[] = {
      {"sentry_futex", &sentry, Call(SYS_futex, FUTEX_WAKE, 0x401000)},
      {"sentry_getppid", &sentry, Call(SYS_getppid, 0, 0x401000)},
      {"stub_guest_call", &stub, Call(SYS_getppid, 0, 0x401000)},
      {"stub_handler_futex", &stub, Call(SYS_futex, FUTEX_WAKE, kStubText + 0x120)},
  };
  for (const Case& c : cases) {
    volatile uint32_t sink = 0;
    const double ns = NsPerCall(iters, [&] { sink = sink + Evaluate(*c.prog, c.d); });
    std::printf("eval_%s_%s %.1f\n", name, c.what, ns);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: seccomp_filter_bench BEFORE_DIR [ITERS]\n");
    return 2;
  }
  const long iters = argc > 2 ? std::strtol(argv[2], nullptr, 10) : 200000;
  if (iters <= 0) {
    std::fprintf(stderr, "seccomp_filter_bench: ITERS must be a positive number, not %s\n", argv[2]);
    return 2;
  }
  const std::string dir = argv[1];
  const Prog sentry_before = Load(dir + "/sentry.golden");
  const Prog stub_before = Load(dir + "/stub.golden");
  const Prog& sentry_after = seedvisor::seccomp::SentryProgram();
  const Prog stub_after = seedvisor::seccomp::StubProgram(kStubText, kStubText + 0x1000);
  std::printf("size_sentry_before %zu\nsize_sentry_after %zu\nsize_stub_before %zu\n"
              "size_stub_after %zu\n",
              sentry_before.size(), sentry_after.size(), stub_before.size(), stub_after.size());
  KernelCost("none", {}, iters);
  KernelCost("before", sentry_before, iters);
  KernelCost("after", sentry_after, iters);
  EvalCost("before", sentry_before, stub_before, iters);
  EvalCost("after", sentry_after, stub_after, iters);
  return 0;
}
