// SystrapContext: new stub threads (NewThread) and stub processes (a guest
// fork's address space, an exec's or a seed's copy: CloneStub, ForkAddressSpace).
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "platform/stub/await_slot_release.h"
#include "platform/systrap/syscall_patch.h"
#include "platform/systrap/systrap_address_space.h"
#include "platform/systrap/systrap_context_internal.h"
namespace seedvisor::platform::systrap {

Result<ThreadHandle> SystrapContext::NewThread() {
  return stub::NewStubThread(tid_, as_->layout().entry, as_->slots());
}

long SystrapContext::CloneStub(long flags) {
  // CLONE_PARENT: the zygote, not this stub, becomes the parent and reaps it.
  // The child starts without our rseq registration (Context::Rseq).
  bool rseq_dropped;
  const RseqArea rseq = SuspendRseq(&rseq_dropped);
  if (!rseq_dropped) return -EAGAIN;
  long pid;
  {
    Injector inj(tid_, as_->layout().entry);
    const long args[6] = {CLONE_PARENT | SIGCHLD | flags, 0, 0, 0, 0, 0};
    pid = inj.ok() ? inj.CallAt(kStubForkGadget, SYS_clone, args) : -ESRCH;
  }
  RestoreRseq(rseq);
  return pid;
}

Result<std::shared_ptr<AddressSpace>> SystrapContext::ForkAddressSpace() {
  stub::StubAddressSpace::KeptFiles kept;
  SystrapAddressSpace::ForkedSites sites;
  // Our parent is the child's: it dies with it as we do. The locks are
  // held for the clone only, not while the child is tied.
  const long pid = stub::ForkTied(as_->dies_with(), as_->layout().entry, [&](long flags) {
    // No site is patched or dropped while the stub forks: the child's text
    // and the sites it takes along must agree.
    absl::MutexLock l(&as_->site_mutex());
    absl::MutexLock k(&as_->kept_mutex());
    const long pid = CloneStub(flags);
    kept = as_->kept_files();
    sites = as_->SitesForFork();
    return pid;
  });
  if (pid < 0) return Errno(static_cast<int>(-pid));
  // The child shares our region until it maps its own.
  auto as = SystrapAddressSpace::Create(static_cast<pid_t>(pid), as_->layout(), nullptr);
  if (!as.ok()) {
    kill(static_cast<pid_t>(pid), SIGKILL);
    return Errno(EAGAIN);
  }
  (*as)->set_dies_with(as_->dies_with());
  (*as)->AdoptSites(std::move(sites));
  (*as)->InheritKeptFiles(std::move(kept));
  return std::shared_ptr<AddressSpace>(*as);
}

}  // namespace seedvisor::platform::systrap
