// Injection into a stub (platform/stub/injector.h) when a signal stop comes
// before the seize's interrupt stop: the zygote got a SIGCHLD (a forked
// sandbox's stubs died) as the sentry seized it to fork a spare's zygote.
// A stub forked from the zygote dies with it, unless it is made to outlive
// it (a sandbox fork's zygote), and is never forked at all if the zygote
// died first.
#include "platform/stub/injector.h"

#include <poll.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "platform/stub/stub_process.h"
#include "platform/systrap/stub_image.h"

namespace seedvisor::platform::stub {
namespace {

// The parent of process `pid`, from /proc/PID/stat; -1 if there is none.
pid_t ParentOf(pid_t pid) {
  FILE* f = fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (f == nullptr) return -1;
  int ppid = -1;
  // pid (comm) state ppid: the stub's comm has no spaces or parentheses.
  if (fscanf(f, "%*d %*s %*c %d", &ppid) != 1) ppid = -1;
  fclose(f);
  return ppid;
}

class InjectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto z = StartZygote(systrap::kStubImage, systrap::kStubImageSize);
    ASSERT_TRUE(z.ok()) << z.status();
    zygote_ = z->pid;
    entry_ = z->layout.entry;
  }
  void TearDown() override { StopZygote(zygote_); }

  pid_t zygote_ = -1;
  uint64_t entry_ = 0;
};

TEST_F(InjectorTest, SignalStopBeforeTheInterruptStop) {
  ASSERT_EQ(ptrace(PTRACE_SEIZE, zygote_, nullptr, nullptr), 0) << strerror(errno);
  // The zygote, blocked in its wait4 loop, takes a SIGCHLD while traced: a
  // signal-delivery-stop. The interrupt that follows stays pending behind it.
  ASSERT_EQ(kill(zygote_, SIGCHLD), 0);
  int status = WaitFor(zygote_);
  ASSERT_TRUE(WIFSTOPPED(status)) << status;
  ASSERT_EQ(status >> 16, 0) << "not a signal stop: " << std::hex << status;
  ASSERT_EQ(WSTOPSIG(status), SIGCHLD);
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, zygote_, nullptr, nullptr), 0) << strerror(errno);

  // The interrupt's stop comes on the way to the gadget: the call must run
  // past it, not end there with the syscall number as its result.
  bool dead = false;
  const long no_args[6] = {};
  EXPECT_EQ(InjectSyscall(zygote_, entry_ + kStubSyscallGadget, SYS_getpid, no_args, &dead),
            zygote_);
  EXPECT_FALSE(dead);
  EXPECT_EQ(InjectSyscall(zygote_, entry_ + kStubSyscallGadget, SYS_getppid, no_args, &dead),
            getpid());
  ASSERT_EQ(ptrace(PTRACE_DETACH, zygote_, nullptr, nullptr), 0) << strerror(errno);

  // Back in its loop: it forks stubs as before.
  Result<pid_t> stub = ForkStub(zygote_, entry_);
  ASSERT_TRUE(stub.ok()) << stub.error().value();
  EXPECT_EQ(ParentOf(*stub), zygote_);
}

// Whether the process behind `pidfd` exits within `ms` milliseconds.
bool ExitsWithin(int pidfd, int ms) {
  pollfd p{pidfd, POLLIN, 0};
  return poll(&p, 1, ms) == 1;
}

// Its zygote SIGKILLed (it cannot end its process group then, as it does
// when its sentry dies), a stub dies too: PR_SET_PDEATHSIG. A stub forked
// to outlive the zygote (a sandbox fork's zygote) lives on.
TEST_F(InjectorTest, AStubDiesWithItsZygote) {
  Result<pid_t> tied = ForkStub(zygote_, entry_);
  Result<pid_t> untied = ForkStub(zygote_, entry_, /*dies_with_zygote=*/false);
  ASSERT_TRUE(tied.ok()) << tied.error().value();
  ASSERT_TRUE(untied.ok()) << untied.error().value();
  EXPECT_EQ(ParentOf(*tied), zygote_);
  const int tied_fd = static_cast<int>(syscall(SYS_pidfd_open, *tied, 0));
  const int untied_fd = static_cast<int>(syscall(SYS_pidfd_open, *untied, 0));
  ASSERT_GE(tied_fd, 0);
  ASSERT_GE(untied_fd, 0);
  EXPECT_FALSE(ExitsWithin(tied_fd, 0));
  ASSERT_EQ(kill(zygote_, SIGKILL), 0);
  ASSERT_EQ(waitpid(zygote_, nullptr, 0), zygote_);
  zygote_ = -1;  // reaped: its pid may name another process now
  EXPECT_TRUE(ExitsWithin(tied_fd, 10000)) << "stub " << *tied << " outlived its zygote";
  EXPECT_FALSE(ExitsWithin(untied_fd, 200)) << "stub " << *untied << " died with its zygote";
  syscall(SYS_pidfd_send_signal, tied_fd, SIGKILL, nullptr, 0);
  syscall(SYS_pidfd_send_signal, untied_fd, SIGKILL, nullptr, 0);
  close(tied_fd);
  close(untied_fd);
}

// The zygote dies between the clone and the tie (a kill of the sandbox's
// cgroup, or of the zygote, can come at any moment): the child was
// re-parented before its prctl, so no parent-death signal would ever come.
// ForkTied sees another parent, kills the child and fails.
TEST_F(InjectorTest, AStubWhoseZygoteDiedBeforeTheTieIsKilled) {
  pid_t child = -1;
  int child_fd = -1;
  const long r = ForkTied(zygote_, entry_, [&](long flags) -> long {
    long pid;
    {
      Injector inj(zygote_, entry_);
      if (!inj.ok()) return -ESRCH;
      const long args[6] = {SIGCHLD | flags, 0, 0, 0, 0, 0};
      pid = inj.CallAt(kStubForkGadget, SYS_clone, args);
    }
    if (pid > 0) {
      child = static_cast<pid_t>(pid);
      child_fd = static_cast<int>(syscall(SYS_pidfd_open, child, 0));
      // Stopped, traced by us: it has run nothing of its own yet.
      kill(zygote_, SIGKILL);
      waitpid(zygote_, nullptr, 0);
      zygote_ = -1;  // reaped: its pid may name another process now
    }
    return pid;
  });
  EXPECT_EQ(r, -ESRCH);
  ASSERT_GT(child, 0);
  ASSERT_GE(child_fd, 0);
  EXPECT_TRUE(ExitsWithin(child_fd, 10000)) << "stub " << child << " outlived its zygote";
  syscall(SYS_pidfd_send_signal, child_fd, SIGKILL, nullptr, 0);
  close(child_fd);
}

// A process that is no stub has no gadget where the call jumps: the call
// fails (EFAULT) instead of continuing the fault forever.
TEST(InjectorNoStubTest, NoGadgetFailsTheCall) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    for (;;) pause();
  }
  alarm(20);  // the old loop never returned
  ASSERT_EQ(SeizeAndStop(child).ok(), true);
  bool dead = false;
  const long no_args[6] = {};
  EXPECT_EQ(InjectSyscall(child, kStubBase + kStubSyscallGadget, SYS_getpid, no_args, &dead),
            -EFAULT);
  EXPECT_FALSE(dead);
  alarm(0);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

}  // namespace
}  // namespace seedvisor::platform::stub
