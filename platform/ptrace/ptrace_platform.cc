#include "platform/ptrace/ptrace_platform.h"

#include <elf.h>
#include <fcntl.h>
#include <linux/close_range.h>
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

#include <cstdio>
#include <cstring>
#include <utility>
#include <fstream>
#include <map>
#include <new>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "platform/ptrace/ptrace_address_space.h"
#include "platform/ptrace/stub_image.h"
#include "platform/stub/injector.h"
#include "platform/stub/stub_platform.h"
#include "platform/stub/stub_process.h"

namespace seedvisor::platform::ptrace {
namespace {

absl::Status ErrnoStatus(std::string_view what, int err) {
  return absl::InternalError(absl::StrCat(std::string(what), ": ", std::strerror(err)));
}

class PtracePlatform : public stub::StubPlatform {
 public:
  std::string_view name() const override { return "ptrace"; }

  // Starts the zygote. Must run on a thread that lives as long as the
  // sandbox: the zygote dies with it (PR_SET_PDEATHSIG).
  absl::Status Init() {
    return StartZygote(kStubImage, kStubImageSize);
  }

  absl::StatusOr<std::shared_ptr<AddressSpace>> NewAddressSpace() override {
    Result<pid_t> pid = ForkStubFromZygote();
    if (!pid.ok()) return ErrnoStatus("forking a stub from the zygote", pid.error().value());
    auto as = std::make_shared<PtraceAddressSpace>(*pid, layout());
    as->set_dies_with(zygote());
    return std::shared_ptr<AddressSpace>(std::move(as));
  }

  absl::StatusOr<std::unique_ptr<Context>> Attach(std::shared_ptr<AddressSpace> as,
                                                  ThreadHandle thread) override {
    auto pas = std::dynamic_pointer_cast<PtraceAddressSpace>(as);
    if (pas == nullptr) return absl::InvalidArgumentError("not a ptrace address space");
    if (Status s = stub::SeizeAndStop(thread.host_tid); !s.ok()) {
      return ErrnoStatus("attaching to a stub thread", s.error().value());
    }
    return std::unique_ptr<Context>(std::make_unique<PtraceContext>(pas, thread.host_tid));
  }

  // The new image's stub is a fork of the old one's, emptied: it keeps the
  // kept files (an exec maps the same ld.so, libc, locale files again), so
  // it needs no open per kept file. If that fails, a stub from the zygote.
  absl::StatusOr<ExecContext> NewExecContext(Context* current) override {
    if (current == nullptr) return Platform::NewExecContext(current);
    Result<std::shared_ptr<AddressSpace>> copy = current->ForkAddressSpace();
    if (copy.ok()) {
      auto ctx = Attach(*copy, (*copy)->initial_thread());
      if (ctx.ok() &&
          static_cast<stub::StubAddressSpace&>(**copy).EmptyForExec().ok()) {
        return ExecContext{std::move(*copy), std::move(*ctx)};
      }
    }  // a failed copy ends here (its stub killed)
    return Platform::NewExecContext(current);
  }

  // ---- Sandbox fork ----
  // Every stub thread of the seed is traced by its task's host thread, for
  // the thread's whole life (PTRACE_O_EXITKILL: a stub thread never runs
  // guest code untraced). The forked sentry can seize none of them, so the
  // seed makes the copies: each parked task thread, the tracer, injects
  // clone(CLONE_PARENT) at the fork gadget of its own stub thread, exactly as
  // for a guest fork. The copy is a new process with one thread, parked in
  // the stub's futex loop and traced by nobody, that has never run guest
  // code; it joins the fork's group and gets its other parked threads (each
  // a short seizure), and the seed keeps a StubProcess (pidfd) for it until
  // the fork is over and kills it unless the forked sentry took it. The
  // forked sentry finds it among StubPlatform's spares (sentry memory, which
  // the host fork copied).
  bool SeedForkOnTaskThreads() const override { return true; }

  absl::Status PrepareSeedFork(Context& ctx, pid_t pgid, int threads) override {
    Result<std::shared_ptr<AddressSpace>> copy = ctx.ForkAddressSpace();
    if (!copy.ok()) return ErrnoStatus("forking a seed stub", copy.error().value());
    auto pas = std::static_pointer_cast<PtraceAddressSpace>(*copy);
    if (!pas->process().ok()) {
      // No pidfd to kill it by later: kill it now, by its pid (still its
      // own: the copy lives until this, and only the seed's zygote reaps it).
      kill(pas->host_pid(), SIGKILL);
      pas->AbandonInForkChild();
      return absl::InternalError(
          absl::StrCat("opening a forked seed stub (", pas->host_pid(), "): mem, pidfd"));
    }
    Result<std::vector<pid_t>> tids = stub::PrepareForkedStub(pas->host_pid(), layout().entry, pgid,
                                                              threads);
    // On failure `pas` dies here (SIGKILL through its pidfd).
    if (!tids.ok()) return ErrnoStatus("preparing a forked stub", tids.error().value());
    AddSpareCopy(pgid, ctx.address_space(), std::move(pas), std::move(*tids));
    return absl::OkStatus();
  }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Platform>> NewPtracePlatform() {
  auto p = std::make_unique<PtracePlatform>();
  if (absl::Status s = p->Init(); !s.ok()) return s;
  return std::unique_ptr<Platform>(std::move(p));
}

}  // namespace seedvisor::platform::ptrace
