// KvmContext: new stub threads (NewThread) and stub processes (a guest
// fork's address space, with a VM of its own: ForkAddressSpace).
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>

#include "platform/kvm/kvm_address_space.h"
#include "platform/stub/injector.h"

namespace seedvisor::platform::kvm {

Result<ThreadHandle> KvmContext::NewThread() {
  return stub::NewStubThread(tid_, as_->layout().entry, as_->slots());
}

Result<std::shared_ptr<AddressSpace>> KvmContext::ForkAddressSpace() {
  // Our parent is the child's: it dies with it as we do.
  const long pid = stub::ForkTied(as_->dies_with(), as_->layout().entry, [&](long flags) {
    stub::Injector inj(tid_, as_->layout().entry);
    const long args[6] = {CLONE_PARENT | SIGCHLD | flags, 0, 0, 0, 0, 0};
    return inj.CallAt(stub::kStubForkGadget, SYS_clone, args);
  });
  if (pid < 0) return Errno(static_cast<int>(-pid));
  // The child has the guest's memory (copy-on-write) but not the VM: KVM
  // serves only the mm that made it. It gets its own, on the same GiBs.
  auto as = KvmAddressSpace::Create(static_cast<pid_t>(pid), as_->layout(),
                                    as_->shared_handle(), as_.get());
  if (!as.ok()) {
    kill(static_cast<pid_t>(pid), SIGKILL);
    return Errno(EAGAIN);
  }
  (*as)->set_dies_with(as_->dies_with());
  return std::shared_ptr<AddressSpace>(*as);
}

}  // namespace seedvisor::platform::kvm
