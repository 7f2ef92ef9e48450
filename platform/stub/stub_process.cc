#include "platform/stub/stub_process.h"

#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "platform/stub/injector.h"
#include "seccomp/pidfd_info.h"

namespace seedvisor::platform::stub {
namespace {

using CopyFn = ssize_t (*)(pid_t, const iovec*, unsigned long, const iovec*, unsigned long,
                           unsigned long);

// process_vm_{read,write}v never split an iovec element: a fault inside one
// fails all of it (process_vm_readv(2), "Partial transfers apply at the
// granularity of iovec elements"). So the remote side is given page by
// page, up to kCopyPages pages in one call, and a transfer stops exactly at
// the first page it cannot reach. Before, each page was a call of its own:
// 17 calls for every 64 KiB a guest read from a socket (issue 11's rtput).
constexpr size_t kCopyPages = 128;

Result<size_t> Copy(CopyFn fn, pid_t pid, UserAddr addr, char* local_buf, size_t len) {
  if (len == 0) return size_t{0};
  size_t done = 0;
  while (done < len) {
    iovec remote[kCopyPages];
    unsigned long pages = 0;
    size_t batch = 0;
    uint64_t a = addr.value() + done;
    while (pages < kCopyPages && done + batch < len) {
      size_t chunk = std::min<size_t>(len - done - batch, kPageSize - (a % kPageSize));
      // SAFETY: a guest address; the kernel checks it against the stub's
      // mappings and fails with EFAULT instead of faulting.
      remote[pages++] = {reinterpret_cast<void*>(a), chunk};
      a += chunk;
      batch += chunk;
    }
    iovec local{local_buf + done, batch};
    ssize_t n = fn(pid, &local, 1, remote, pages, 0);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < batch) break;  // the next page is out of reach
  }
  if (done == 0) return Errno(EFAULT);
  return done;
}

// The first number after `key` in a /proc file, or 0.
int64_t ReadProcNumber(const std::string& path, const char* fmt) {
  FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return 0;
  char line[256];
  long long v = 0;
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    if (std::sscanf(line, fmt, &v) == 1) break;
  }
  std::fclose(f);
  return v;
}

// [vdso] in the maps of `pid`, once the image linked at `base` is mapped.
uint64_t FindStubVdso(pid_t pid, uint64_t base) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  bool stub = false;
  uint64_t vdso = 0;
  while (std::getline(maps, line)) {
    uint64_t start = std::stoull(line, nullptr, 16);
    if (start == base) stub = true;
    if (line.find("[vdso]") != std::string::npos) vdso = start;
  }
  return stub ? vdso : 0;
}

absl::Status ErrnoStatus(const char* what, int err) {
  return absl::InternalError(absl::StrCat("stub: ", what, ": ", std::strerror(err)));
}

#ifndef SYS_mseal
#define SYS_mseal 462
#endif

// Seals (mseal(2), Linux 6.10) every mapping of the stub image linked at
// `base` in the zygote `pid`: its text, gadgets, read-only data and scratch
// page. Every stub forked from the zygote inherits the seal, so no munmap,
// mmap over, mprotect, mremap or destructive madvise can change them any
// more, whoever asks: a guest that jumps to the stub's syscall instruction
// with its own registers gets EPERM from the host kernel. The vDSO and vvar
// stay unsealed: they are the guest's own. A kernel without mseal (ENOSYS)
// leaves the image unsealed; the sentry's own checks (UserTop) still hold.
absl::Status SealImage(pid_t pid, uint64_t base, uint64_t entry) {
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string line;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  while (std::getline(maps, line)) {
    uint64_t start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &start, &end) != 2) continue;
    if (start < base || line.find('[') != std::string::npos) continue;  // [vdso], [stack] ...
    ranges.emplace_back(start, end);
  }
  if (ranges.empty()) return absl::InternalError("stub: the image is not mapped in the zygote");
  Injector inj(pid, entry);
  if (!inj.ok()) return ErrnoStatus("attaching to the zygote", ESRCH);
  for (const auto& [start, end] : ranges) {
    long r = inj.Call(SYS_mseal, static_cast<long>(start), static_cast<long>(end - start), 0);
    if (r == -ENOSYS) return absl::OkStatus();
    if (r != 0) return ErrnoStatus("sealing the stub image", static_cast<int>(-r));
  }
  return absl::OkStatus();
}

}  // namespace

StubProcess::StubProcess(pid_t pid) : pid_(pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/mem", pid);
  mem_fd_ = open(path, O_RDWR | O_CLOEXEC);
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

StubProcess::~StubProcess() {
  if (pidfd_ >= 0) {
    syscall(SYS_pidfd_send_signal, pidfd_, SIGKILL, nullptr, 0);
    close(pidfd_);
  }
  if (mem_fd_ >= 0) close(mem_fd_);
}

void StubProcess::Abandon() {
  if (pidfd_ >= 0) close(pidfd_);
  if (mem_fd_ >= 0) close(mem_fd_);
  pidfd_ = mem_fd_ = -1;
}

Result<size_t> StubProcess::Read(UserAddr addr, void* dst, size_t len) const {
  return Copy(process_vm_readv, pid_, addr, static_cast<char*>(dst), len);
}

Result<size_t> StubProcess::Write(UserAddr addr, const void* src, size_t len) const {
  // process_vm_writev reads the local iovec only.
  return Copy(process_vm_writev, pid_, addr, const_cast<char*>(static_cast<const char*>(src)), len);
}

Status StubProcess::WriteForce(UserAddr addr, const void* src, size_t len) const {
  if (mem_fd_ < 0) return Errno(EIO);
  ssize_t n = pwrite(mem_fd_, src, len, static_cast<off_t>(addr.value()));
  if (n != static_cast<ssize_t>(len)) return Errno(EFAULT);
  return {};
}

Result<size_t> StubProcess::ReadForce(UserAddr addr, void* dst, size_t len) const {
  if (mem_fd_ < 0) return Errno(EIO);
  ssize_t n = pread(mem_fd_, dst, len, static_cast<off_t>(addr.value()));
  if (n <= 0) return Errno(EFAULT);
  return static_cast<size_t>(n);
}

int64_t StubProcess::CpuTimeNs() const {
  clockid_t clock;
  timespec ts;
  if (clock_getcpuclockid(pid_, &clock) != 0 || clock_gettime(clock, &ts) != 0) return 0;
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t StubProcess::ThreadCpuTimeNs(pid_t tid) const {
  // The first field of schedstat is the thread's time on a CPU, in ns.
  return ReadProcNumber(absl::StrCat("/proc/", pid_, "/task/", tid, "/schedstat"), "%lld");
}

int64_t StubProcess::MaxRssKb() const {
  return ReadProcNumber(absl::StrCat("/proc/", pid_, "/status"), "VmHWM: %lld");
}

int StubProcess::DeathSignal(int wait_ms) const {
  if (pidfd_ < 0) return 0;
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  auto waited_ms = [&start] {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
  };
  // Readable once every thread has exited (pidfd_poll(): not before the
  // last): a stub killed by a signal loses its threads one by one, and the
  // task whose thread went first asks while the others are still exiting.
  pollfd p{pidfd_, POLLIN, 0};
  int r;
  while ((r = poll(&p, 1, static_cast<int>(std::max<int64_t>(0, wait_ms - waited_ms())))) < 0 &&
         errno == EINTR) {
  }
  if (r <= 0) return 0;
  for (;;) {
    seccomp::PidfdInfo info{};
    info.mask = seccomp::kPidfdInfoExit;
    if (ioctl(pidfd_, seccomp::kPidfdGetInfo, &info) != 0) return 0;  // an older host
    if (info.mask & seccomp::kPidfdInfoExit) {
      return WIFSIGNALED(info.exit_code) ? WTERMSIG(info.exit_code) : 0;
    }
    if (waited_ms() >= wait_ms) return 0;  // the zygote has not reaped it
    usleep(1000);
  }
}

void StubProcess::ResetPeakRss() const {
  const std::string path = absl::StrCat("/proc/", pid_, "/clear_refs");
  const int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)!write(fd, "5", 1);
  close(fd);
}

absl::StatusOr<Zygote> StartZygote(const uint8_t* image, size_t size, const ZygoteOptions& opts) {
  Zygote z;
  Elf64_Ehdr ehdr;
  if (size < sizeof(ehdr)) return absl::InternalError("stub: image too small");
  std::memcpy(&ehdr, image, sizeof(ehdr));
  z.layout.entry = ehdr.e_entry;
  if (z.layout.entry < opts.stub_base) return absl::InternalError("stub: image linked below its base");
  int memfd = memfd_create(opts.name, MFD_CLOEXEC);
  if (memfd < 0) return ErrnoStatus("memfd_create", errno);
  if (write(memfd, image, size) != static_cast<ssize_t>(size)) {
    int err = errno;
    close(memfd);
    return ErrnoStatus("writing the stub image", err);
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(memfd);
    return ErrnoStatus("fork", err);
  }
  if (pid == 0) {
    // Between fork and exec: async-signal-safe calls only.
    // No signal blocked, whatever the forking thread blocks (`seedsc do`
    // blocks those it forwards to the guest from its start): the parent-
    // death SIGUSR1 below must end the zygote, and its stubs inherit this.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // SIGUSR1: the stub's `orphaned` handler kills the zygote's whole
    // process group, so no stub outlives a sentry that was SIGKILLed (a
    // forked stub does not inherit a parent-death signal; each gets its
    // own, SIGKILL when the zygote dies: injector.h, ForkTied). Until
    // the image installs the handler, SIGUSR1's default action ends the
    // zygote alone.
    prctl(PR_SET_PDEATHSIG, SIGUSR1);
    if (getppid() != parent) _exit(1);
    // Its own process group (no terminal signals for stubs), in the
    // sentry's session: a forked sandbox's stubs, forked from the seed's,
    // must be able to join the fork's group (sentry/sfork).
    setpgid(0, 0);
    personality(ADDR_NO_RANDOMIZE);  // one layout for every stub
    // A stub holds no host fd but the image it runs (close-on-exec).
    syscall(SYS_close_range, 0, static_cast<unsigned>(memfd) - 1, 0);
    syscall(SYS_close_range, static_cast<unsigned>(memfd) + 1, ~0U, 0);
    const char* argv[] = {opts.name, "zygote", nullptr};
    const char* envp[] = {nullptr};
    syscall(SYS_execveat, memfd, "", argv, envp, AT_EMPTY_PATH);
    _exit(127);
  }
  close(memfd);
  z.pid = pid;
  // Wait until the stub image runs in the child.
  for (int i = 0; i < 2000 && z.layout.vdso.IsNull(); ++i) {
    z.layout.vdso = UserAddr(FindStubVdso(pid, opts.stub_base));
    if (z.layout.vdso.IsNull()) usleep(1000);
  }
  int status;
  if (z.layout.vdso.IsNull() || waitpid(pid, &status, WNOHANG) == pid) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return absl::InternalError("stub: the zygote did not start");
  }
  // Where the scratch page is: a word at a fixed offset in the stub's code.
  iovec local{&z.layout.scratch, sizeof(z.layout.scratch)};
  // SAFETY: a read from the stub's own read-only text page.
  iovec remote{reinterpret_cast<void*>(z.layout.entry + opts.scratch_offset), sizeof(uint64_t)};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != sizeof(uint64_t)) {
    int err = errno;
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return ErrnoStatus("reading the stub layout", err);
  }
  if (absl::Status s = SealImage(pid, opts.stub_base, z.layout.entry); !s.ok()) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return s;
  }
  return z;
}

void StopZygote(pid_t pid) {
  if (pid <= 0) return;
  kill(-pid, SIGKILL);  // its process group: every stub forked from it
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, __WALL);
  // The stubs are the zygote's children: once it is gone they go to the
  // nearest child subreaper (`seedsc do` is one, so that none is left a
  // zombie for the host's pid 1), else to pid 1. Reap those that came to
  // us, for a bounded time (ECHILD once none is left). Async-signal-safe,
  // no prctl: the sentry's seccomp policy allows none here.
  for (int i = 0; i < 1000; ++i) {
    pid_t r = waitpid(-pid, nullptr, __WALL | WNOHANG);
    if (r < 0 && errno != EINTR) break;
    if (r == 0) usleep(1000);
  }
}

}  // namespace seedvisor::platform::stub
