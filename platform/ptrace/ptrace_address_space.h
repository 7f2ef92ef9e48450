// PtraceAddressSpace and PtraceContext: see ptrace_platform.h.
#ifndef SEEDVISOR_PLATFORM_PTRACE_PTRACE_ADDRESS_SPACE_H_
#define SEEDVISOR_PLATFORM_PTRACE_PTRACE_ADDRESS_SPACE_H_

#include <sys/types.h>

#include <memory>
#include <vector>

#include "platform/host_affinity.h"
#include "platform/platform.h"
#include "platform/stub/context_registry.h"
#include "platform/stub/stub_address_space.h"

namespace seedvisor::platform::ptrace {

class PtraceContext;

using stub::StubLayout;

class PtraceAddressSpace : public stub::StubAddressSpace {
 public:
  // `pid` is a parked stub; this object owns it (and kills it at the end).
  PtraceAddressSpace(pid_t pid, const StubLayout& layout)
      : StubAddressSpace(pid, layout) {}

  UserAddr UserTop() const override { return UserAddr(stub::kStubBase); }
  // Without waiting: every stub thread is traced by the host thread that
  // runs its task, so a signal that would kill the stub stops a thread for
  // its tracer first (the guest's fault), and a thread that died stays a
  // zombie until its own tracer reaps it, perhaps the caller itself.
  int HostDeathSignal(bool) const override { return proc_.DeathSignal(/*wait_ms=*/0); }

  // Contexts register themselves so that mapping calls find the stub thread
  // that the calling host thread traces.
  stub::ContextRegistry<PtraceContext>& contexts() { return contexts_; }

 private:
  // Every call is injected through the caller's own traced stub thread.
  long MemoryCall(long nr, const long (&args)[6]) override;
  std::unique_ptr<stub::StubSyscalls> FileCalls() override;

  stub::ContextRegistry<PtraceContext> contexts_;
};

class PtraceContext : public Context, public HostAffinity {
 public:
  // `tid` must already be seized and stopped by the calling thread.
  PtraceContext(std::shared_ptr<PtraceAddressSpace> as, pid_t tid);
  ~PtraceContext() override;

  Stop Run(Registers& regs) override;
  void Interrupt() override;
  Status GetFpState(FpState& fp) override;
  Status SetFpState(const FpState& fp) override;
  Result<ThreadHandle> NewThread() override;
  Result<std::shared_ptr<AddressSpace>> ForkAddressSpace() override;
  AddressSpace& address_space() override { return *as_; }
  ThreadHandle thread() const override { return ThreadHandle{tid_}; }
  int64_t CpuTimeNs() const override;

  // Injected into the traced stub thread (its syscall gadget).
  long SetHostAffinity(const cpu_set_t& set) override {
    return as_->SetThreadAffinity(set, [this](long nr, const long (&a)[6]) {
      return Inject(stub::kStubSyscallGadget, nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    });
  }

  // Runs one host syscall in this stub thread at `gadget` (an offset in the
  // stub) and returns the raw result (-errno on failure).
  long Inject(uint64_t gadget, long nr, long a0, long a1, long a2, long a3, long a4, long a5);

 protected:
  // AtomicUpdate32 runs the stub's atomic gadget: a fault there stops
  // the traced thread (-EFAULT), so no probe is needed first.
  long ThreadSyscall(long nr, const long (&a)[6]) override;

 private:
  // Reads the thread's NT_X86_XSTATE image into xstate_; its size, or 0.
  size_t ReadXstate();

  std::shared_ptr<PtraceAddressSpace> as_;
  std::vector<uint8_t> xstate_;  // ReadXstate()'s buffer
  const pid_t tid_;
  const pid_t owner_;  // the host thread that traces tid_
  bool dead_ = false;
  // An injection found the guest's rseq_cs invalid (stub::InjectSyscall):
  // the next Run() reports the SIGSEGV the host forced.
  bool rseq_segv_ = false;
};

}  // namespace seedvisor::platform::ptrace

#endif  // SEEDVISOR_PLATFORM_PTRACE_PTRACE_ADDRESS_SPACE_H_
