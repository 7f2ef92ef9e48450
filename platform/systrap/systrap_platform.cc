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

 private:
  absl::Mutex mu_;
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
