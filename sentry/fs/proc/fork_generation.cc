#include "sentry/fs/proc/fork_generation.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"

namespace seedvisor::sentry {
namespace {

// The readiness is a host eventfd (POLLIN while its count is non-zero),
// a per-file wakeup primitive: a forked sentry makes its own (and starts it
// readable: the fork changed the generation).
class ForkGenerationFile : public FileDescription, public ForkGenerationWatcher {
 public:
  ForkGenerationFile(Kernel& k, int flags, DentryRef d)
      : FileDescription(flags, std::move(d)), kernel_(k), seen_(k.fork_generation()),
        efd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~ForkGenerationFile() override {
    if (efd_ >= 0) close(efd_);
  }

  Result<size_t> PRead(Task&, char* buf, size_t len, int64_t offset) override {
    if (offset < 0) return Errno(EINVAL);
    uint64_t g = kernel_.fork_generation();
    if (offset == 0) Seen(g);
    return PReadString(absl::StrCat(g, "\n"), buf, len, offset);
  }
  Result<size_t> Read(Task& t, char* buf, size_t len) override {
    return ReadAtOffset(t, buf, len);
  }
  Result<int64_t> Seek(int64_t offset, int whence) override {
    std::lock_guard l(offset_mu_);
    if (whence == SEEK_CUR) offset += offset_;
    if (whence != SEEK_SET && whence != SEEK_CUR) return Errno(EINVAL);
    if (offset < 0) return Errno(EINVAL);
    offset_ = offset;
    return offset;
  }
  int PollFd() const override { return efd_; }

  void ForkGenerationChanged() override {
    uint64_t one = 1;
    if (write(efd_, &one, sizeof(one)) < 0) {
      // EAGAIN at the (unreachable) maximum: readable already.
    }
  }

  absl::Status AdoptInForkChild(ForkFileContext&) override {
    int fd = eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);  // readable: a new generation
    if (fd < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
    close(efd_);  // ours was the seed's
    efd_ = fd;
    return absl::OkStatus();
  }

 private:
  void Seen(uint64_t g) {
    if (seen_.exchange(g) == g && g == kernel_.fork_generation()) return;
    uint64_t v;
    while (read(efd_, &v, sizeof(v)) > 0) {
    }
    // A bump between the read of g and the drain: stay readable.
    if (kernel_.fork_generation() != g) ForkGenerationChanged();
  }

  Kernel& kernel_;
  std::atomic<uint64_t> seen_;
  int efd_;
};

class ForkGenerationInode : public SynthInode {
 public:
  explicit ForkGenerationInode(Kernel& k) : SynthInode(S_IFREG | 0444), kernel_(k) {}
  Result<FileRef> Open(const std::shared_ptr<Dentry>& d, int flags) override {
    if ((flags & O_ACCMODE) != O_RDONLY) return Errno(EACCES);
    auto f = std::make_shared<ForkGenerationFile>(kernel_, flags, d);
    if (f->PollFd() < 0) return Errno(ENFILE);
    kernel_.WatchForkGeneration(f);
    return FileRef(f);
  }

 private:
  Kernel& kernel_;
};

}  // namespace

std::shared_ptr<SynthInode> NewForkGenerationInode(Kernel& k) {
  return std::make_shared<ForkGenerationInode>(k);
}

}  // namespace seedvisor::sentry
