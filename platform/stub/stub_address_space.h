// StubAddressSpace: what the ptrace and systrap address spaces share. Both
// hold a guest address space in a stub process (StubProcess) and change its
// mappings by making host syscalls in it; they differ only in how a call gets
// there, which a subclass supplies:
//   - MemoryCall: anonymous mmap, munmap, mprotect, madvise, msync, mremap,
//     made for the calling host thread (ptrace injects them; systrap's stub
//     thread makes them itself from its signal handler);
//   - FileCalls: any host syscall, for mapping a sentry file (the stub opens
//     it through /proc/<sentry>/fd/N with the access the sentry's fd has).
//
//   class PtraceAddressSpace : public stub::StubAddressSpace {
//     long MemoryCall(long nr, const long (&args)[6]) override { ... }
//     std::unique_ptr<stub::StubSyscalls> FileCalls() override { ... }
//     UserAddr UserTop() const override { ... }
//   };
#ifndef SEEDVISOR_PLATFORM_STUB_STUB_ADDRESS_SPACE_H_
#define SEEDVISOR_PLATFORM_STUB_STUB_ADDRESS_SPACE_H_

#include <sched.h>
#include <sys/types.h>

#include <atomic>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "platform/platform.h"
#include "platform/stub/injector.h"
#include "platform/stub/stub_layout.h"
#include "platform/stub/stub_process.h"

namespace seedvisor::platform::stub {

class StubAddressSpace : public AddressSpace {
 public:
  Status Map(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
             uint64_t offset) override;
  // A world-readable host file is kept open in the stub (at the fds of
  // seccomp::kStubKeptFdBase, least recently used replaced first): mapping it
  // again is a memory call, with no open and no injection on systrap.
  Status MapImmutableFile(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                          uint64_t offset) override;
  Status Unmap(UserAddr addr, uint64_t len) override;
  Status Protect(UserAddr addr, uint64_t len, int prot) override;
  Status Advise(UserAddr addr, uint64_t len, int advice) override;
  Status Sync(UserAddr addr, uint64_t len, int flags) override;
  Status Remap(UserAddr old_addr, uint64_t old_len, UserAddr new_addr,
               uint64_t new_len) override;
  Result<size_t> Read(UserAddr addr, void* dst, size_t len) override {
    return proc_.Read(addr, dst, len);
  }
  Result<size_t> Write(UserAddr addr, const void* src, size_t len) override {
    return proc_.Write(addr, src, len);
  }
  Result<size_t> ReadForce(UserAddr addr, void* dst, size_t len) override {
    return proc_.ReadForce(addr, dst, len);
  }
  Status WriteForce(UserAddr addr, const void* src, size_t len) override {
    return proc_.WriteForce(addr, src, len);
  }
  UserAddr VdsoBase() const override { return layout_.vdso; }
  int host_pid() const override { return proc_.pid(); }
  ThreadHandle initial_thread() const override { return ThreadHandle{proc_.pid()}; }
  int64_t CpuTimeNs() const override { return proc_.CpuTimeNs(); }
  int64_t MaxRssKb() const override { return proc_.MaxRssKb(); }
  int HostDeathSignal(bool context_died) const override {
    return proc_.DeathSignal(/*wait_ms=*/context_died ? 1000 : 0);
  }

  const StubProcess& process() const { return proc_; }
  void AbandonInForkChild() override { proc_.Abandon(); }
  const StubLayout& layout() const { return layout_; }

  // The zygote this stub dies with (PR_SET_PDEATHSIG): its parent, or 0 if
  // it has none to die with (a sandbox fork's copy of a seed's stub, whose
  // parent is the seed's zygote). A stub forked from this one with
  // CLONE_PARENT has the same parent and is tied to it the same way
  // (injector.h, ForkTied). Set before the address
  // space is shared.
  pid_t dies_with() const { return dies_with_; }
  void set_dies_with(pid_t zygote) { dies_with_ = zygote; }

  // How many host files the sentry has opened in this stub to map them
  // (each an open of /proc/<sentry>/fd/N injected over ptrace, the cost the
  // kept files save): for tests and benchmarks.
  uint64_t files_opened() const { return files_opened_.load(std::memory_order_relaxed); }

  // ---- A host fork of this stub: a guest fork(), or an exec's new image ----
  // The copy inherits the stub's fds, kept files included; it takes the
  // table that says which file each kept fd holds, so that mapping one of
  // them there needs no open either:
  //
  //   KeptFiles kept;
  //   { absl::MutexLock l(&as.kept_mutex()); pid = <fork the stub>; kept = as.kept_files(); }
  //   copy->InheritKeptFiles(std::move(kept));
  //
  // The lock, held from before the host fork until the table is read, keeps
  // the parent's other threads from replacing a kept fd in between.
  struct KeptFile {
    dev_t dev = 0;
    ino_t ino = 0;
    uint64_t used = 0;  // 0: free
  };
  struct KeptFiles {
    std::vector<KeptFile> files;
    uint64_t clock = 0;
  };
  absl::Mutex& kept_mutex() ABSL_LOCK_RETURNED(scratch_mu_) { return scratch_mu_; }
  KeptFiles kept_files() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(scratch_mu_) {
    return KeptFiles{kept_, kept_clock_};
  }
  // Why that is safe: a kept fd holds a world-readable regular host file,
  // opened read-only, that a guest image of this process mapped (the same
  // open file the sentry gave it, never another); the copy's guest
  // (the fork child, or the new image after execve) could have been handed
  // that very file by the guest itself, as an fd inherited over fork(2) or
  // left open across execve(2) (no O_CLOEXEC). A guest that jumps into the
  // stub's text can still only mmap it read-only (stub_policy.h).
  void InheritKeptFiles(KeptFiles kept) ABSL_LOCKS_EXCLUDED(scratch_mu_);

  // sched_setaffinity(0, ..., set) made by one of this stub's threads on
  // itself through `call` (its context's own way to run a host syscall):
  // the mask goes through the scratch page, which the guest cannot write.
  // The raw result. HostAffinity (platform/host_affinity.h) says why.
  long SetThreadAffinity(const cpu_set_t& set,
                         absl::FunctionRef<long(long nr, const long (&args)[6])> call)
      ABSL_LOCKS_EXCLUDED(scratch_mu_);

  // An exec's copy of a stub (Platform::NewExecContext): unmaps everything
  // below UserTop(), the old image's guest memory, so that only the
  // platform's own mappings are left, as in a stub fresh from the zygote,
  // and restarts the peak RSS (VmHWM) there. Call on the host thread that
  // drives the copy's context.
  Status EmptyForExec();

 protected:
  // `pid` is a parked stub; this object owns it (and kills it at the end).
  StubAddressSpace(pid_t pid, const StubLayout& layout) : proc_(pid), layout_(layout) {}

  // The raw result of memory call `nr` in the stub (-errno on failure);
  // -EFAULT if the calling host thread drives no thread of this stub.
  virtual long MemoryCall(long nr, const long (&args)[6]) = 0;
  // A way to make any host syscall in the stub for the calling host thread,
  // or null if it drives no thread of this stub.
  virtual std::unique_ptr<StubSyscalls> FileCalls() = 0;

  StubProcess proc_;
  const StubLayout layout_;
  pid_t dies_with_ = 0;

 private:
  Status Call(long nr, long a0, long a1, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0);

  // Opens the sentry's `host_fd` in the stub (through /proc, with the same
  // access mode) and maps it; if `keep_slot` >= 0 the stub keeps the file at
  // kept fd `keep_slot` (replacing what was there) instead of closing it,
  // and says in *kept whether it did.
  Status MapOpened(UserAddr addr, uint64_t len, int prot, int flags, int host_fd,
                   uint64_t offset, int keep_slot, bool* kept)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(scratch_mu_);

  mutable absl::Mutex scratch_mu_;  // one user of the scratch page at a time
  // The host files kept open in the stub: slot i is stub fd
  // seccomp::kStubKeptFdBase + i. A stub forked from this one inherits
  // the fds and, through InheritKeptFiles, this table.
  std::vector<KeptFile> kept_ ABSL_GUARDED_BY(scratch_mu_);
  uint64_t kept_clock_ ABSL_GUARDED_BY(scratch_mu_) = 0;
  std::atomic<uint64_t> files_opened_ = 0;
};

}  // namespace seedvisor::platform::stub

#endif  // SEEDVISOR_PLATFORM_STUB_STUB_ADDRESS_SPACE_H_
