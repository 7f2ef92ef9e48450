#include "platform/systrap/systrap_platform.h"

#include <elf.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "platform/systrap/stub_image.h"
#include "platform/systrap/systrap_address_space.h"
#include "platform/stub/stub_process.h"
#include "seccomp/stub_policy.h"

namespace seedvisor::platform::systrap {
namespace {

absl::Status ErrnoStatus(std::string_view what, int err) {
  return absl::InternalError(absl::StrCat("systrap: ", std::string(what), ": ", std::strerror(err)));
}

class SystrapPlatform : public Platform {
 public:
  ~SystrapPlatform() override {
    stub::StopZygote(zygote_);
  }

  std::string_view name() const override { return "systrap"; }

  // Starts the zygote as the ptrace platform does.
  absl::Status Init() {
    // The zygote itself runs unfiltered; its children get the filter in
    // NewAddressSpace().
    auto z = stub::StartZygote(kStubImage, kStubImageSize);
    if (!z.ok()) return z.status();
    zygote_ = z->pid;
    layout_ = z->layout;
    // The filter lets the stub's own text page make the handler's calls.
    const uint64_t text = layout_.entry & ~uint64_t{0xfff};
    filter_ = seccomp::Compile(seccomp::StubPolicy(text, text + 0x1000));
    return absl::OkStatus();
  }

  absl::StatusOr<std::shared_ptr<AddressSpace>> NewAddressSpace() override {
    Result<pid_t> pid = [&] {
      absl::MutexLock l(&mu_);
      return stub::ForkStub(zygote_, layout_.entry);
    }();
    if (!pid.ok()) return ErrnoStatus("forking a stub from the zygote", pid.error().value());
    auto as = SystrapAddressSpace::Create(*pid, layout_, &filter_);
    if (!as.ok()) {
      kill(*pid, SIGKILL);
      return as.status();
    }
    return std::shared_ptr<AddressSpace>(*as);
  }

  absl::StatusOr<std::unique_ptr<Context>> Attach(std::shared_ptr<AddressSpace> as,
                                                  ThreadHandle thread) override {
    auto sas = std::dynamic_pointer_cast<SystrapAddressSpace>(as);
    if (sas == nullptr) return absl::InvalidArgumentError("systrap: not a systrap address space");
    auto ctx = SystrapContext::Create(sas, thread.host_tid);
    if (!ctx.ok()) return ctx.status();
    return std::unique_ptr<Context>(std::move(*ctx));
  }

  // Sandbox fork. The forked sentry's zygote is a fresh stub forked from
  // the seed's zygote (which runs unfiltered, as zygotes do), moved into the
  // new sandbox's process group and sent into the zygote loop, so that it
  // reaps the stubs it forks. Nothing here starts a program or compiles.
  absl::StatusOr<pid_t> AdoptInForkChild(pid_t pgid) override {
    new (&mu_) absl::Mutex;  // the seed's may have had waiters
    pgid_ = pgid;
    // The seed's zygote stays the seed's: never stopped from here.
    Result<pid_t> z = stub::ForkZygoteInGroup(zygote_, layout_.entry, pgid);
    if (!z.ok()) return ErrnoStatus("setting up the forked sandbox's zygote", z.error().value());
    zygote_ = *z;
    return zygote_;
  }

  absl::StatusOr<std::shared_ptr<AddressSpace>> CloneSeedAddressSpace(
      AddressSpace& seed_as, ThreadHandle parked) override {
    (void)seed_as;
    long pid;
    {
      // The parked thread waits in its handler for the seed's sentry, which
      // is quiesced: nobody else traces it. CLONE_PARENT: the seed's zygote
      // reaps the copy, as it does for a guest fork.
      Injector inj(parked.host_tid, layout_.entry);
      if (!inj.ok()) return ErrnoStatus("attaching to a seed stub thread", ESRCH);
      const long args[6] = {CLONE_PARENT | SIGCHLD, 0, 0, 0, 0, 0};
      pid = inj.CallAt(stub::kStubForkGadget, SYS_clone, args);
    }
    if (pid <= 0) return ErrnoStatus("forking a seed stub", pid < 0 ? static_cast<int>(-pid) : EAGAIN);
    if (Status s = stub::JoinProcessGroup(static_cast<pid_t>(pid), layout_.entry, pgid_); !s.ok()) {
      kill(static_cast<pid_t>(pid), SIGKILL);
      return ErrnoStatus("moving a forked stub into its sandbox's process group", s.error().value());
    }
    // A fresh region replaces the one the copy shares with the seed's stub.
    auto as = SystrapAddressSpace::Create(static_cast<pid_t>(pid), layout_, nullptr);
    if (!as.ok()) {
      kill(static_cast<pid_t>(pid), SIGKILL);
      return as.status();
    }
    return std::shared_ptr<AddressSpace>(*as);
  }

  absl::StatusOr<ThreadHandle> NewParkedThread(AddressSpace& as) override {
    Result<pid_t> tid = stub::NewParkedStubThread(as.host_pid(), layout_.entry);
    if (!tid.ok()) return ErrnoStatus("a thread in a forked stub", tid.error().value());
    return ThreadHandle{*tid};
  }

 private:
  absl::Mutex mu_;
  pid_t pgid_ = 0;
  pid_t zygote_ = -1;
  StubLayout layout_;
  std::vector<sock_filter> filter_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Platform>> NewSystrapPlatform() {
  auto p = std::make_unique<SystrapPlatform>();
  if (absl::Status s = p->Init(); !s.ok()) return s;
  return std::unique_ptr<Platform>(std::move(p));
}

}  // namespace seedvisor::platform::systrap
