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

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "platform/systrap/stub_image.h"
#include "platform/systrap/systrap_address_space.h"
#include "platform/stub/stub_platform.h"
#include "platform/stub/stub_process.h"
#include "seccomp/stub_program.h"

namespace seedvisor::platform::systrap {
namespace {

absl::Status ErrnoStatus(std::string_view what, int err) {
  return absl::InternalError(absl::StrCat("systrap: ", std::string(what), ": ", std::strerror(err)));
}

class SystrapPlatform : public stub::StubPlatform {
 public:
  std::string_view name() const override { return "systrap"; }

  // Starts the zygote as the ptrace platform does.
  absl::Status Init() {
    // Patching needs BMI2 for the fast entry's flag-free GS check
    // (fast_gs_check_amd64.inc) and user-space FSGSBASE: the fast path
    // finds its slot through GS, which only WRGSBASE sets without a syscall.
    const char* env = std::getenv("SEEDVISOR_SYSTRAP_PATCH");
    patch_sites_ = env != nullptr && std::strcmp(env, "1") == 0 &&
                   __builtin_cpu_supports("bmi2") && UserFsgsbase();
    // The zygote itself runs unfiltered; its children get the filter in
    // NewAddressSpace().
    if (absl::Status s = StartZygote(kStubImage, kStubImageSize); !s.ok()) return s;
    // The filter lets the stub's own text page make the handler's calls.
    const uint64_t text = layout().entry & ~uint64_t{0xfff};
    filter_ = seccomp::StubProgram(text, text + 0x1000);
    return absl::OkStatus();
  }

  absl::StatusOr<std::shared_ptr<AddressSpace>> NewAddressSpace() override {
    Result<pid_t> pid = ForkStubFromZygote();
    if (!pid.ok()) return ErrnoStatus("forking a stub from the zygote", pid.error().value());
    auto as = SystrapAddressSpace::Create(*pid, layout(), &filter_);
    if (!as.ok()) {
      kill(*pid, SIGKILL);
      return as.status();
    }
    (*as)->set_dies_with(zygote());
    if (patch_sites_) (*as)->EnablePatching();
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

  // The new image's stub is a fork of the old one's, emptied: it keeps the
  // kept files (an exec maps the same ld.so, libc, locale files again) and
  // the filter and handlers, so it needs no open per kept file and none of
  // the zygote stub's setup calls. If that fails, a stub from the zygote.
  absl::StatusOr<ExecContext> NewExecContext(Context* current) override {
    auto* cur = dynamic_cast<SystrapContext*>(current);
    if (cur == nullptr) return Platform::NewExecContext(current);
    auto& old_as = static_cast<SystrapAddressSpace&>(cur->address_space());
    stub::StubAddressSpace::KeptFiles kept;
    // The same parent (CLONE_PARENT), and it dies with it as the old one.
    const long pid = stub::ForkTied(old_as.dies_with(), layout().entry, [&](long flags) {
      absl::MutexLock k(&old_as.kept_mutex());
      const long pid = cur->CloneStub(flags);
      kept = old_as.kept_files();
      return pid;
    });
    if (pid < 0) return Platform::NewExecContext(current);
    {
      auto as = SystrapAddressSpace::Create(static_cast<pid_t>(pid), layout(), nullptr);
      if (!as.ok()) kill(static_cast<pid_t>(pid), SIGKILL);  // not reaped yet: still its pid
      if (as.ok()) {
        (*as)->set_dies_with(old_as.dies_with());
        (*as)->InheritKeptFiles(std::move(kept));
        // The old image's patched text goes with its memory; the new one
        // patches afresh (no sites copied).
        if (patch_sites_) (*as)->EnablePatching();
        auto ctx = Attach(*as, (*as)->initial_thread());
        if (ctx.ok() && (*as)->EmptyForExec().ok()) {
          return ExecContext{std::move(*as), std::move(*ctx)};
        }
      }
    }  // a failed copy ends here (its stub killed)
    return Platform::NewExecContext(current);
  }

  // Sandbox fork. The seed prepares each fork's host processes ahead
  // (stub::SeedForkSpares): the fork's zygote is a fresh stub forked from
  // the seed's zygote (which runs unfiltered, as zygotes do), moved into the
  // fork's process group and sent into the zygote loop, so that it reaps the
  // stubs it forks; each address space's copy is forked by a parked thread
  // of the seed's stub and gets a fresh region. Nothing here starts a
  // program or compiles a filter.

  absl::Status PrepareSeedFork(Context& ctx, pid_t pgid, int threads) override {
    // The parked stub thread waits in its handler for its task, which is
    // parked: nobody else traces it. The seed's zygote reaps the copy, as
    // it does for a guest fork; the copy's thread holds no rseq
    // registration (each forked task registers its own again).
    auto& seed_as = static_cast<SystrapAddressSpace&>(ctx.address_space());
    // Before the copy: the sites the seed's guest trapped at once are
    // patched in the seed, not in every fork (PatchCountedSites).
    seed_as.PatchCountedSites(static_cast<SystrapContext&>(ctx));
    absl::MutexLock sites(&seed_as.site_mutex());  // the copy's patched text = its sites
    // Untied: the copy's parent is the seed's zygote, which it outlives.
    const long pid = stub::ForkTied(/*parent=*/0, layout().entry, [&](long flags) {
      return static_cast<SystrapContext&>(ctx).CloneStub(flags);
    });
    if (pid < 0) return ErrnoStatus("forking a seed stub", static_cast<int>(-pid));
    // A fresh region replaces the one the copy shares with the seed's stub.
    auto as = SystrapAddressSpace::Create(static_cast<pid_t>(pid), layout(), nullptr);
    if (!as.ok()) {
      kill(static_cast<pid_t>(pid), SIGKILL);  // not reaped yet: still its pid
      return as.status();
    }
    (*as)->AdoptSites(seed_as.SitesForFork());
    {
      // Quiesced: no thread of the seed maps anything now.
      absl::MutexLock k(&seed_as.kept_mutex());
      (*as)->InheritKeptFiles(seed_as.kept_files());
    }
    Result<std::vector<pid_t>> tids =
        stub::PrepareForkedStub(static_cast<pid_t>(pid), layout().entry, pgid, threads);
    // On failure `as` dies here (SIGKILL through its pidfd).
    if (!tids.ok()) return ErrnoStatus("preparing a forked stub", tids.error().value());
    AddSpareCopy(pgid, ctx.address_space(), std::move(*as), std::move(*tids));
    return absl::OkStatus();
  }

 private:
  std::vector<sock_filter> filter_;
  bool patch_sites_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Platform>> NewSystrapPlatform() {
  auto p = std::make_unique<SystrapPlatform>();
  if (absl::Status s = p->Init(); !s.ok()) return s;
  return std::unique_ptr<Platform>(std::move(p));
}

}  // namespace seedvisor::platform::systrap
