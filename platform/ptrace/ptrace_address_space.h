// PtraceAddressSpace and PtraceContext: see ptrace_platform.h.
#ifndef SEEDVISOR_PLATFORM_PTRACE_PTRACE_ADDRESS_SPACE_H_
#define SEEDVISOR_PLATFORM_PTRACE_PTRACE_ADDRESS_SPACE_H_

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <unordered_map>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "platform/platform.h"
#include "platform/stub/stub_process.h"

namespace seedvisor::platform::ptrace {

class PtraceContext;

// Where the stub's fixed pieces are; the same in every stub.
struct StubLayout {
  uint64_t entry = 0;      // gadgets are at fixed offsets from here
  uint64_t scratch = 0;    // a read-only page for injected syscall arguments
  UserAddr vdso;
};

class PtraceAddressSpace : public AddressSpace {
 public:
  // `pid` is a parked stub; this object owns it (and kills it at the end).
  PtraceAddressSpace(pid_t pid, const StubLayout& layout);
  ~PtraceAddressSpace() override;

  Status Map(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
             uint64_t offset) override;
  Status Unmap(UserAddr addr, uint64_t len) override;
  Status Protect(UserAddr addr, uint64_t len, int prot) override;
  Status Advise(UserAddr addr, uint64_t len, int advice) override;
  Status Sync(UserAddr addr, uint64_t len, int flags) override;
  Status Remap(UserAddr old_addr, uint64_t old_len, UserAddr new_addr,
               uint64_t new_len) override;
  Result<size_t> Read(UserAddr addr, void* dst, size_t len) override;
  Result<size_t> Write(UserAddr addr, const void* src, size_t len) override;
  Status WriteForce(UserAddr addr, const void* src, size_t len) override;
  UserAddr UserTop() const override;
  UserAddr VdsoBase() const override { return layout_.vdso; }
  int host_pid() const override { return proc_.pid(); }
  ThreadHandle initial_thread() const override { return ThreadHandle{proc_.pid()}; }
  int64_t CpuTimeNs() const override { return proc_.CpuTimeNs(); }
  int64_t MaxRssKb() const override { return proc_.MaxRssKb(); }
  const stub::StubProcess& process() const { return proc_; }

  const StubLayout& layout() const { return layout_; }

  // Contexts register themselves so that mapping calls find the stub thread
  // that the calling host thread traces.
  void Register(pid_t host_tid, PtraceContext* ctx);
  void Unregister(pid_t host_tid);

 private:
  // A host syscall in the stub, made through the caller's own stub thread.
  long Inject(long nr, long a0 = 0, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
              long a5 = 0);
  static Status FromSyscall(long r);

  stub::StubProcess proc_;
  const StubLayout layout_;
  absl::Mutex mu_;
  std::unordered_map<pid_t, PtraceContext*> injectors_ ABSL_GUARDED_BY(mu_);
  absl::Mutex scratch_mu_;  // one user of the scratch page at a time
};

class PtraceContext : public Context {
 public:
  // `tid` must already be seized and stopped by the calling thread.
  PtraceContext(std::shared_ptr<PtraceAddressSpace> as, pid_t tid);
  ~PtraceContext() override;

  Stop Run(Registers& regs) override;
  void Interrupt() override;
  Status GetFpRegs(FpRegisters& fp) override;
  Status SetFpRegs(const FpRegisters& fp) override;
  Result<ThreadHandle> NewThread() override;
  Result<std::shared_ptr<AddressSpace>> ForkAddressSpace() override;
  AddressSpace& address_space() override { return *as_; }
  int64_t CpuTimeNs() const override;

  // Runs one host syscall in this stub thread at `gadget` (an offset in the
  // stub) and returns the raw result (-errno on failure).
  long Inject(uint64_t gadget, long nr, long a0, long a1, long a2, long a3, long a4, long a5);

 private:
  std::shared_ptr<PtraceAddressSpace> as_;
  const pid_t tid_;
  const pid_t owner_;  // the host thread that traces tid_
  bool dead_ = false;
};

// Seizes a parked stub thread from the calling thread and waits until it stops.
Status SeizeAndStop(pid_t tid);

// Makes host syscall `nr` in the stopped, traced stub thread `tid` by running
// the gadget at `gadget_addr`; restores the thread's registers afterwards.
// Returns the raw result (-errno on failure); sets *dead if the thread died.
long InjectSyscall(pid_t tid, uint64_t gadget_addr, long nr, const long (&args)[6], bool* dead);

}  // namespace seedvisor::platform::ptrace

#endif  // SEEDVISOR_PLATFORM_PTRACE_PTRACE_ADDRESS_SPACE_H_
