// The stub's and the sentry's programs (compiled at build time; evaluated
// with Evaluate() from bpf_eval.cc), and the sentry filter installed for real
// in a child.
#include "seccomp/bpf.h"

#include <asm/prctl.h>
#include <elf.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "seccomp/sentry_filter.h"
#include "seccomp/sentry_policy.h"
#include "seccomp/stub_policy.h"
#include "seccomp/stub_program.h"

namespace seedvisor::seccomp {
namespace {

constexpr uint64_t kStubText = 0x7fffe0000000;

seccomp_data Call(int nr, std::initializer_list<uint64_t> args = {}, uint64_t ip = 0x401000) {
  seccomp_data d{};
  d.nr = nr;
  d.arch = AUDIT_ARCH_X86_64;
  d.instruction_pointer = ip;
  int i = 0;
  for (uint64_t a : args) d.args[i++] = a;
  return d;
}

TEST(StubPolicy, GuestCallsTrapAndTheStubMayDoLittle) {
  auto prog = StubProgram(kStubText, kStubText + 0x1000);
  const uint64_t in = kStubText + 0x120;
  // From the guest: everything traps, whatever it is.
  EXPECT_EQ(Evaluate(prog, Call(SYS_getppid)), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_futex, {0, FUTEX_WAIT})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_execve, {}, kStubText - 2)), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_execve, {}, kStubText + 0x1000)), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_execve, {}, kStubText + 0x100001000)), SECCOMP_RET_TRAP);
  // From the stub's text: the handler's protocol.
  EXPECT_EQ(Evaluate(prog, Call(SYS_futex, {0, FUTEX_WAIT}, in)), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_futex, {0, FUTEX_WAKE}, in)), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_futex, {0, FUTEX_CMP_REQUEUE}, in)),
            SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(Evaluate(prog, Call(SYS_rt_sigreturn, {}, in)), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_exit, {}, in)), SECCOMP_RET_ALLOW);
  // Injected calls only under the sentry's ptrace.
  EXPECT_EQ(Evaluate(prog, Call(SYS_mmap, {}, in)), SECCOMP_RET_TRACE);  // a file mapping
  EXPECT_EQ(Evaluate(prog, Call(SYS_mmap, {0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS}, in)),
            SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_munmap, {}, in)), SECCOMP_RET_ALLOW);
  // A kept host file (stub_policy.h) the stub maps itself; no other fd.
  const uint64_t rx = PROT_READ | PROT_EXEC;
  EXPECT_EQ(Evaluate(prog, Call(SYS_mmap, {0, 4096, rx, MAP_PRIVATE, kStubKeptFdBase}, in)),
            SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_mmap, {0, 4096, rx, MAP_PRIVATE,
                                           kStubKeptFdBase + kStubKeptFds - 1}, in)),
            SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_mmap, {0, 4096, rx, MAP_PRIVATE, kStubKeptFdBase - 1}, in)),
            SECCOMP_RET_TRACE);
  EXPECT_EQ(Evaluate(prog, Call(SYS_mmap, {0, 4096, rx, MAP_PRIVATE,
                                           kStubKeptFdBase + kStubKeptFds}, in)),
            SECCOMP_RET_TRACE);
  EXPECT_EQ(Evaluate(prog, Call(SYS_mmap, {0, 4096, rx, MAP_PRIVATE,
                                           (uint64_t{1} << 32) | kStubKeptFdBase}, in)),
            SECCOMP_RET_TRACE);
  EXPECT_EQ(Evaluate(prog, Call(SYS_mmap, {0, 4096, rx, MAP_PRIVATE, kStubKeptFdBase})),
            SECCOMP_RET_TRAP);  // from the guest's own code it is the guest's mmap
  EXPECT_EQ(Evaluate(prog, Call(SYS_dup3, {}, in)), SECCOMP_RET_TRACE);
  EXPECT_EQ(Evaluate(prog, Call(SYS_rseq, {}, in)), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_rseq)), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_getcpu, {}, in)), SECCOMP_RET_ALLOW);
  // The FS/GS bases where the host has no user-space FSGSBASE; no other
  // arch_prctl from the stub, and the guest's own still traps.
  for (uint64_t code : {ARCH_SET_FS, ARCH_SET_GS, ARCH_GET_FS, ARCH_GET_GS}) {
    EXPECT_EQ(Evaluate(prog, Call(SYS_arch_prctl, {code}, in)), SECCOMP_RET_ALLOW) << code;
    EXPECT_EQ(Evaluate(prog, Call(SYS_arch_prctl, {code})), SECCOMP_RET_TRAP) << code;
  }
  EXPECT_EQ(Evaluate(prog, Call(SYS_arch_prctl, {ARCH_SET_CPUID, 0}, in)), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(Evaluate(prog, Call(SYS_openat, {}, in)), SECCOMP_RET_TRACE);
  EXPECT_EQ(Evaluate(prog, Call(SYS_clone, {}, in)), SECCOMP_RET_TRACE);
  EXPECT_EQ(Evaluate(prog, Call(462 /* mseal */, {}, in)), SECCOMP_RET_TRACE);
  EXPECT_EQ(Evaluate(prog, Call(462 /* mseal */)), SECCOMP_RET_TRAP);
  // A new stub's parent-death signal (injector.h, ForkTied); its parent
  // is read from /proc, not asked of it.
  EXPECT_EQ(Evaluate(prog, Call(SYS_prctl, {PR_SET_PDEATHSIG, SIGKILL}, in)), SECCOMP_RET_TRACE);
  EXPECT_EQ(Evaluate(prog, Call(SYS_prctl, {PR_SET_PDEATHSIG, 0}, in)), SECCOMP_RET_TRACE);
  EXPECT_EQ(Evaluate(prog, Call(SYS_getppid, {}, in)), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(Evaluate(prog, Call(SYS_prctl, {PR_SET_DUMPABLE, 1}, in)), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(Evaluate(prog, Call(SYS_prctl, {PR_SET_PDEATHSIG, SIGKILL})), SECCOMP_RET_TRAP);
  // Anything else from the stub's text: the guest jumped there.
  EXPECT_EQ(Evaluate(prog, Call(SYS_execve, {}, in)), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(Evaluate(prog, Call(SYS_exit_group, {}, in)), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(Evaluate(prog, Call(SYS_ptrace, {}, in)), SECCOMP_RET_KILL_PROCESS);
}

TEST(SentryPolicy, AllowsWhatTheSentryUsesAndTrapsTheRest) {
  const auto& prog = SentryProgram();
  EXPECT_EQ(Evaluate(prog, Call(SYS_futex, {0, FUTEX_WAKE})), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_process_vm_readv)), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_ptrace, {PTRACE_SEIZE})), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_ptrace, {PTRACE_SYSEMU})), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_ptrace, {PTRACE_SYSCALL})), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_ptrace, {PTRACE_GET_SYSCALL_INFO})), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_ptrace, {PTRACE_GETREGSET, 0, NT_X86_XSTATE})),
            SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_ptrace, {PTRACE_SETREGSET, 0, NT_X86_XSTATE})),
            SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_clone, {CLONE_VM | CLONE_THREAD | CLONE_SIGHAND})),
            SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_mmap, {0, 4096, PROT_READ | PROT_WRITE})),
            SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_tgkill, {1, 2, SIGURG})), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Evaluate(prog, Call(SYS_clone3)), ActErrno(ENOSYS));
  // Denied: a new host program, a host fork, other tracing, executable
  // memory, arbitrary signals, namespaces and mounts, kernel attack surface.
  for (int nr : {SYS_execve, SYS_execveat, SYS_fork, SYS_vfork, SYS_mount, SYS_umount2,
                 SYS_setns, SYS_chroot, SYS_pivot_root, SYS_bpf,
                 SYS_perf_event_open, SYS_init_module, SYS_kexec_load, SYS_keyctl,
                 SYS_add_key, SYS_userfaultfd, SYS_io_uring_setup, SYS_process_madvise,
                 SYS_pidfd_getfd, SYS_personality, SYS_seccomp}) {
    EXPECT_EQ(Evaluate(prog, Call(nr)), SECCOMP_RET_TRAP) << "syscall " << nr;
  }
  EXPECT_EQ(Evaluate(prog, Call(SYS_clone, {SIGCHLD})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_clone, {CLONE_NEWUSER | SIGCHLD})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_unshare, {CLONE_NEWNS})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_unshare, {CLONE_NEWUSER})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_ptrace, {PTRACE_ATTACH})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_ptrace, {PTRACE_POKEDATA})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_ptrace, {PTRACE_TRACEME})), SECCOMP_RET_TRAP);
  // Other regsets (NT_PRSTATUS would set the registers behind the sentry's back).
  EXPECT_EQ(Evaluate(prog, Call(SYS_ptrace, {PTRACE_SETREGSET, 0, NT_PRSTATUS})),
            SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_mmap, {0, 4096, PROT_READ | PROT_EXEC})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_mprotect, {0, 4096, PROT_EXEC})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_kill, {1, SIGTERM})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_tgkill, {1, 2, SIGSTOP})), SECCOMP_RET_TRAP);
  EXPECT_EQ(Evaluate(prog, Call(SYS_ioctl, {0, 0x5412 /* TIOCSTI */})), SECCOMP_RET_TRAP);
  // Every rule says who needs it.
  for (const Rule& r : SentryPolicy().rules) EXPECT_STRNE(r.why, "") << "syscall " << r.nr;
}

// Only a sandbox with a writable bind mount may change host files by name:
// the narrow program traps what the host_writes one allows, and both agree
// on everything else.
TEST(SentryPolicy, HostWritesOnlyWithWritableBinds) {
  const auto& narrow = SentryProgram();
  const auto& rw = SentryProgram(/*host_writes=*/true);
  for (int nr : {SYS_mkdirat, SYS_unlinkat, SYS_renameat2, SYS_linkat, SYS_symlinkat,
                 SYS_fchmod, SYS_fchmodat, SYS_fchownat, SYS_fchown, SYS_utimensat,
                 SYS_getxattr, SYS_listxattr, SYS_setxattr, SYS_removexattr}) {
    EXPECT_EQ(Evaluate(narrow, Call(nr)), SECCOMP_RET_TRAP) << "syscall " << nr;
    EXPECT_EQ(Evaluate(rw, Call(nr)), SECCOMP_RET_ALLOW) << "syscall " << nr;
  }
  // mknodat makes the name of a FIFO or socket (mkfifo, a unix socket's
  // bind) and nothing else: no device node, no device number, no other type.
  for (uint64_t type : {S_IFIFO, S_IFSOCK}) {
    EXPECT_EQ(Evaluate(narrow, Call(SYS_mknodat, {3, 0, type | 01000, 0})), SECCOMP_RET_TRAP);
    EXPECT_EQ(Evaluate(rw, Call(SYS_mknodat, {3, 0, type | 01000, 0})), SECCOMP_RET_ALLOW);
    EXPECT_EQ(Evaluate(rw, Call(SYS_mknodat, {3, 0, type | 0644, 0x0101})), SECCOMP_RET_TRAP);
  }
  for (uint64_t mode : {S_IFCHR | 0600, S_IFBLK | 0600, S_IFREG | 0600, 0600, S_IFDIR | 0600}) {
    EXPECT_EQ(Evaluate(rw, Call(SYS_mknodat, {3, 0, mode, 0})), SECCOMP_RET_TRAP) << mode;
    EXPECT_EQ(Evaluate(rw, Call(SYS_mknodat, {3, 0, mode, 0x0101})), SECCOMP_RET_TRAP) << mode;
  }
  // Still nothing that leaves the sandbox's own business.
  for (int nr : {SYS_execve, SYS_mount, SYS_chroot, SYS_mknod, SYS_rename,
                 SYS_unlink, SYS_chmod, SYS_chown, SYS_open_by_handle_at}) {
    EXPECT_EQ(Evaluate(rw, Call(nr)), SECCOMP_RET_TRAP) << "syscall " << nr;
  }
  for (const Rule& r : SentryPolicy(true).rules) EXPECT_STRNE(r.why, "") << "syscall " << r.nr;
}

// The filter as the kernel runs it: allowed calls work, a denied one fails
// with EPERM and is counted and logged; the process lives on.
TEST(SentryPolicy, InstalledFilterDeniesWithEpermNotDeath) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (InstallSentryFilter() != 0) _exit(10);
    if (getpid() <= 0) _exit(11);
    char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
    long r = syscall(SYS_execve, "/bin/true", argv, nullptr);
    if (r != -1 || errno != EPERM) _exit(12);
    if (syscall(SYS_setns, 0, 0) != -1 || errno != EPERM) _exit(13);
    if (SentryFilterViolations() != 2) _exit(14);
    // Threads still start (clone3 -> ENOSYS -> clone with CLONE_THREAD).
    std::thread t([] {});
    t.join();
    void* m = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m != MAP_FAILED || errno != EPERM) _exit(15);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Golden programs: a change to a policy or to the compiler shows up here.
// Regenerate with SEEDVISOR_UPDATE_GOLDEN=$PWD/seccomp/testdata.
void CheckGolden(const std::string& name, const std::vector<sock_filter>& prog) {
  std::string got = Dump(prog);
  if (const char* dir = std::getenv("SEEDVISOR_UPDATE_GOLDEN")) {
    std::ofstream(std::string(dir) + "/" + name) << got;
    return;
  }
  std::string path = std::string(std::getenv("TEST_SRCDIR") ? std::getenv("TEST_SRCDIR") : ".") +
                     "/seedvisor/seccomp/testdata/" + name;
  std::ifstream f(path);
  ASSERT_TRUE(f.good()) << "missing golden file " << path;
  std::stringstream want;
  want << f.rdbuf();
  EXPECT_EQ(got, want.str()) << name << " changed; if on purpose, regenerate (see above)";
}

TEST(Golden, StubProgram) {
  CheckGolden("stub.golden", StubProgram(kStubText, kStubText + 0x1000));
}

TEST(Golden, SentryProgram) { CheckGolden("sentry.golden", SentryProgram()); }

TEST(Golden, SentryHostWritesProgram) {
  CheckGolden("sentry_host_writes.golden", SentryProgram(/*host_writes=*/true));
}

}  // namespace
}  // namespace seedvisor::seccomp
