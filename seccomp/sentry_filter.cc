#include "seccomp/sentry_filter.h"

#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <iterator>
#include <mutex>

#include "seccomp/bpf.h"
#include "seccomp/compiled_programs.h"

namespace seedvisor::seccomp {
namespace {

std::atomic<uint64_t> g_violations{0};

// Which program this process installs, and whether it has (RequestHostWrites).
std::mutex g_mode_mu;
bool g_installed = false;    // guarded by g_mode_mu
bool g_host_writes = false;  // guarded by g_mode_mu

// Appends the decimal digits of `v` to buf at *n (async-signal-safe).
void PutNum(char* buf, size_t* n, uint64_t v) {
  char tmp[24];
  int k = 0;
  do {
    tmp[k++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (k > 0) buf[(*n)++] = tmp[--k];
}

void PutStr(char* buf, size_t* n, const char* s) {
  while (*s != '\0') buf[(*n)++] = *s++;
}

// Runs on the sentry thread that made the denied call. Async-signal-safe:
// it formats by hand and uses write(2), which the filter allows.
void OnSigsys(int, siginfo_t* info, void* uc) {
  g_violations.fetch_add(1, std::memory_order_relaxed);
  char buf[160];
  size_t n = 0;
  PutStr(buf, &n, "seedsc: seccomp: the sentry's filter denied host syscall ");
  PutNum(buf, &n, static_cast<uint64_t>(info->si_syscall));
  PutStr(buf, &n, " (thread ");
  PutNum(buf, &n, static_cast<uint64_t>(syscall(SYS_gettid)));
  PutStr(buf, &n, "); it fails with EPERM. Add it to seccomp/sentry_policy.cc if it is needed.\n");
  ssize_t ignored = write(STDERR_FILENO, buf, n);
  (void)ignored;
  // SECCOMP_RET_TRAP leaves the call unexecuted; its result is what rax
  // holds when the handler returns (seccomp(2)).
  static_cast<ucontext_t*>(uc)->uc_mcontext.gregs[REG_RAX] = -EPERM;
}

}  // namespace

const std::vector<sock_filter>& SentryProgram(bool host_writes) {
  static const std::vector<sock_filter>* prog =
      new std::vector<sock_filter>(std::begin(compiled::kSentry), std::end(compiled::kSentry));
  static const std::vector<sock_filter>* rw = new std::vector<sock_filter>(
      std::begin(compiled::kSentryHostWrites), std::end(compiled::kSentryHostWrites));
  return host_writes ? *rw : *prog;
}

bool RequestHostWrites() {
  std::lock_guard l(g_mode_mu);
  if (g_installed && !g_host_writes) return false;
  g_host_writes = true;
  return true;
}

int InstallSentryFilter() {
  bool host_writes;
  {
    std::lock_guard l(g_mode_mu);
    // Once per process: the filter is on every thread already (TSYNC),
    // and a second one would need PR_SET_NO_NEW_PRIVS, which the first
    // denies (`seedsc do`'s test stall installs it before RunInit does).
    if (g_installed) return 0;
    g_installed = true;
    host_writes = g_host_writes;
  }
  const std::vector<sock_filter>& prog = SentryProgram(host_writes);
  struct sigaction sa = {};
  sa.sa_sigaction = OnSigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, nullptr) != 0) return -errno;
  return Install(prog, /*tsync=*/true);
}

uint64_t SentryFilterViolations() { return g_violations.load(std::memory_order_relaxed); }

}  // namespace seedvisor::seccomp
