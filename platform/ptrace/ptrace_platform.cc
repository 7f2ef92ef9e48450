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
#include <fstream>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "platform/ptrace/ptrace_address_space.h"
#include "platform/ptrace/stub_image.h"
#include "platform/stub/injector.h"
#include "platform/stub/stub_process.h"

namespace seedvisor::platform::ptrace {
namespace {

absl::Status ErrnoStatus(std::string_view what, int err) {
  return absl::InternalError(absl::StrCat(std::string(what), ": ", std::strerror(err)));
}

class PtracePlatform : public Platform {
 public:
  ~PtracePlatform() override {
    stub::StopZygote(zygote_);
  }

  std::string_view name() const override { return "ptrace"; }

  // Starts the zygote. Must run on a thread that lives as long as the
  // sandbox: the zygote dies with it (PR_SET_PDEATHSIG).
  absl::Status Init() {
    auto z = stub::StartZygote(kStubImage, kStubImageSize);
    if (!z.ok()) return z.status();
    zygote_ = z->pid;
    layout_ = z->layout;
    return absl::OkStatus();
  }

  absl::StatusOr<std::shared_ptr<AddressSpace>> NewAddressSpace() override {
    Result<pid_t> pid = [&] {
      absl::MutexLock l(&mu_);
      return stub::ForkStub(zygote_, layout_.entry);
    }();
    if (!pid.ok()) return ErrnoStatus("forking a stub from the zygote", pid.error().value());
    return std::shared_ptr<AddressSpace>(std::make_shared<PtraceAddressSpace>(*pid, layout_));
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

 private:
  absl::Mutex mu_;
  pid_t zygote_ = -1;
  StubLayout layout_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Platform>> NewPtracePlatform() {
  auto p = std::make_unique<PtracePlatform>();
  if (absl::Status s = p->Init(); !s.ok()) return s;
  return std::unique_ptr<Platform>(std::move(p));
}

}  // namespace seedvisor::platform::ptrace
