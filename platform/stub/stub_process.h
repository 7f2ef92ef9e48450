// What every stub-process platform (ptrace, systrap) does the same way: the
// host process that holds a guest address space, seen from the sentry.
//
// StubProcess copies guest memory with process_vm_readv/writev (honouring
// page protections) or through /proc/PID/mem (WriteForce, as the ELF loader
// needs), reports the stub's CPU time and peak RSS, and kills it through a
// pidfd. StartZygote() starts the stub every other one is forked from.
//
//   auto z = stub::StartZygote(kStubImage, kStubImageSize);
//   stub::StubProcess proc(child_pid);   // a parked stub forked from z->pid
//   SV_ASSIGN_OR_RETURN(size_t n, proc.Read(addr, buf, len));
#ifndef SEEDVISOR_PLATFORM_STUB_STUB_PROCESS_H_
#define SEEDVISOR_PLATFORM_STUB_STUB_PROCESS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "platform/stub/stub_layout.h"
#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"

namespace seedvisor::platform::stub {

class StubProcess {
 public:
  // `pid` must be alive (a parked stub): the pidfd taken here names it even
  // after its pid number is reaped and reused.
  explicit StubProcess(pid_t pid);
  // SIGKILLs the stub (through the pidfd, never by number).
  ~StubProcess();
  StubProcess(const StubProcess&) = delete;
  StubProcess& operator=(const StubProcess&) = delete;

  pid_t pid() const { return pid_; }
  // Sandbox fork: in a forked sentry, this object is the seed's. Closes our
  // fds without killing the stub (the seed still runs it).
  void Abandon();
  bool ok() const { return mem_fd_ >= 0 && pidfd_ >= 0; }
  int mem_fd() const { return mem_fd_; }
  int pidfd() const { return pidfd_; }

  // Bytes copied before the first fault; EFAULT if none.
  Result<size_t> Read(UserAddr addr, void* dst, size_t len) const;
  Result<size_t> Write(UserAddr addr, const void* src, size_t len) const;
  // Writes even to read-only pages (FOLL_FORCE through /proc/PID/mem).
  Status WriteForce(UserAddr addr, const void* src, size_t len) const;
  // Reads even PROT_NONE pages (FOLL_FORCE through /proc/PID/mem).
  Result<size_t> ReadForce(UserAddr addr, void* dst, size_t len) const;

  int64_t CpuTimeNs() const;                  // all the stub's threads
  int64_t ThreadCpuTimeNs(pid_t tid) const;   // one of them (schedstat)
  int64_t MaxRssKb() const;                   // VmHWM
  // The signal the stub died of, once it is dead and reaped (its zygote
  // reaps at once); 0 if it lives, exited, or the host cannot say (before
  // Linux 6.15: no PIDFD_INFO_EXIT). Waits up to `wait_ms` in all for its
  // last thread to exit and for the reap: a thread traced by the caller
  // itself stays a zombie until the caller reaps it (wait_ms 0 then).
  int DeathSignal(int wait_ms) const;
  // Restarts VmHWM at the current RSS (proc(5) /proc/PID/clear_refs "5"),
  // for a stub that an exec's new image reuses; best effort.
  void ResetPeakRss() const;

 private:
  const pid_t pid_;
  int mem_fd_ = -1;
  int pidfd_ = -1;
};

struct ZygoteOptions {
  const char* name = "seedsc-stub";                // the memfd's and the process's name
  uint64_t stub_base = kStubBase;                  // where the image is linked
  uint64_t scratch_offset = kStubScratchAddr;      // entry-relative word holding the scratch page address
};

struct Zygote {
  pid_t pid = -1;
  StubLayout layout;  // the same in every stub forked from it (no ASLR)
};

// Runs the embedded stub image as a zygote: a child of the calling thread
// (which must live as long as the sandbox: the zygote has PR_SET_PDEATHSIG,
// and so has every stub forked from it, on the zygote: ForkStub), in its
// own process group, without ASLR, holding no host fd. The image's mappings
// are sealed (mseal(2)) in the zygote, so in every stub forked from it: a
// guest that runs the stub's syscall instruction cannot unmap, replace,
// move or mprotect them.
absl::StatusOr<Zygote> StartZygote(const uint8_t* image, size_t size,
                                    const ZygoteOptions& opts = {});

// Kills the zygote `pid` (if > 0) and reaps it; its stubs die with it.
void StopZygote(pid_t pid);

}  // namespace seedvisor::platform::stub

#endif  // SEEDVISOR_PLATFORM_STUB_STUB_PROCESS_H_
