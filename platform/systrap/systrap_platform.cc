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
#include "seccomp/stub_policy.h"

namespace seedvisor::platform::systrap {
namespace {

absl::Status ErrnoStatus(std::string_view what, int err) {
  return absl::InternalError(absl::StrCat("systrap: ", std::string(what), ": ", std::strerror(err)));
}

// Finds [vdso] in the maps of `pid`, once the stub image is mapped there.
uint64_t FindStubVdso(pid_t pid) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  bool stub = false;
  uint64_t vdso = 0;
  while (std::getline(maps, line)) {
    uint64_t start = std::stoull(line, nullptr, 16);
    if (start == kStubBase) stub = true;
    if (line.find("[vdso]") != std::string::npos) vdso = start;
  }
  return stub ? vdso : 0;
}

class SystrapPlatform : public Platform {
 public:
  ~SystrapPlatform() override {
    if (zygote_ > 0) {
      kill(zygote_, SIGKILL);
      waitpid(zygote_, nullptr, __WALL);
    }
  }

  std::string_view name() const override { return "systrap"; }

  // Starts the zygote (as the ptrace platform does; the zygote itself runs
  // unfiltered, its children get the filter in NewAddressSpace).
  absl::Status Init() {
    int memfd = memfd_create("seedsc-systrap-stub", MFD_CLOEXEC);
    if (memfd < 0) return ErrnoStatus("memfd_create", errno);
    if (write(memfd, kStubImage, kStubImageSize) != static_cast<ssize_t>(kStubImageSize)) {
      close(memfd);
      return ErrnoStatus("writing the stub image", errno);
    }
    Elf64_Ehdr ehdr;
    std::memcpy(&ehdr, kStubImage, sizeof(ehdr));
    layout_.entry = ehdr.e_entry;
    if (layout_.entry < kStubBase) return absl::InternalError("systrap: stub linked below kStubBase");
    // The filter lets the stub's own text page make the handler's calls.
    const uint64_t text = layout_.entry & ~uint64_t{0xfff};
    filter_ = seccomp::Compile(seccomp::StubPolicy(text, text + 0x1000));

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) return ErrnoStatus("fork", errno);
    if (pid == 0) {
      // Between fork and exec: async-signal-safe calls only.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      setsid();                        // no terminal signals for stubs
      personality(ADDR_NO_RANDOMIZE);  // one layout for every stub
      // A stub holds no host fd but the image it runs (close-on-exec).
      syscall(SYS_close_range, 0, static_cast<unsigned>(memfd) - 1, 0);
      syscall(SYS_close_range, static_cast<unsigned>(memfd) + 1, ~0U, 0);
      const char* argv[] = {"seedsc-stub", "zygote", nullptr};
      const char* envp[] = {nullptr};
      syscall(SYS_execveat, memfd, "", argv, envp, AT_EMPTY_PATH);
      _exit(127);
    }
    close(memfd);
    zygote_ = pid;
    for (int i = 0; i < 2000 && layout_.vdso.IsNull(); ++i) {
      layout_.vdso = UserAddr(FindStubVdso(pid));
      if (layout_.vdso.IsNull()) usleep(1000);
    }
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return absl::InternalError("systrap: the stub did not start");
    }
    iovec local{&layout_.scratch, sizeof(layout_.scratch)};
    // SAFETY: a read from the stub's own read-only text page.
    iovec remote{reinterpret_cast<void*>(layout_.entry + kStubScratchAddr), sizeof(uint64_t)};
    if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != sizeof(uint64_t)) {
      return ErrnoStatus("reading the stub layout", errno);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::shared_ptr<AddressSpace>> NewAddressSpace() override {
    long pid;
    {
      absl::MutexLock l(&mu_);
      // The zygote is traced only while it forks, so that nobody has to
      // serve its SIGCHLDs in between.
      Injector inj(zygote_, layout_.entry);
      if (!inj.ok()) return ErrnoStatus("attaching to the stub zygote", ESRCH);
      pid = inj.Call(SYS_clone, SIGCHLD, 0, 0, 0, 0, 0, kStubForkGadget);
    }
    if (pid <= 0) return ErrnoStatus("forking a stub", pid < 0 ? static_cast<int>(-pid) : EAGAIN);
    auto as = SystrapAddressSpace::Create(static_cast<pid_t>(pid), layout_, &filter_);
    if (!as.ok()) {
      kill(static_cast<pid_t>(pid), SIGKILL);
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
