// Pipe (pipe.h): PipeFile, an open end of a pipe or FIFO; pipe2(2)'s
// NewPipe, and OpenFifo with the one Pipe of each FIFO.
#include "sentry/fs/pipe/pipe.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "sentry/base/sweep_schedule.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {
namespace {

std::atomic<uint64_t> g_next_pipe_ino{0x10000};

}  // namespace

PipeFile::PipeFile(int flags, std::shared_ptr<Pipe> pipe, std::shared_ptr<Dentry> d, bool fifo)
    : FileDescription(flags, std::move(d)), pipe_(std::move(pipe)) {
  pipe_->Attach(this, fifo);
}

PipeFile::~PipeFile() { pipe_->Detach(this); }

Result<size_t> PipeFile::Read(Task& t, char* buf, size_t len) {
  return pipe_->Read(t, buf, len, nonblocking());
}

Result<size_t> PipeFile::Write(Task& t, const char* buf, size_t len) {
  return pipe_->Write(t, buf, len, nonblocking(), (flags() & O_DIRECT) != 0);
}

absl::Status PipeFile::AdoptInForkChild(ForkFileContext& ctx) {
  if (!ctx.shared_adopted.insert(pipe_.get()).second) return absl::OkStatus();
  return pipe_->AdoptInForkChild();
}

int PipeFile::PollFd() const { return pipe_->PollFdFor(const_cast<PipeFile*>(this)); }

Result<struct stat> PipeFile::Stat() {
  if (dentry()) return FileDescription::Stat();  // a FIFO: its inode's
  struct stat st {};
  st.st_mode = S_IFIFO | 0600;
  st.st_ino = pipe_->ino();
  st.st_dev = 0xc;  // pipefs
  st.st_nlink = 1;
  st.st_blksize = 4096;
  clock_gettime(CLOCK_REALTIME, &st.st_mtim);
  st.st_atim = st.st_ctim = st.st_mtim;
  return st;
}

Result<long> PipeFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  if (cmd == FIONREAD) {
    int n = static_cast<int>(std::min<size_t>(pipe_->BytesHeld(), INT32_MAX));
    SV_TRY(TaskCopyOut(t, arg, &n, sizeof(n)));
    return 0L;
  }
  return Errno(ENOTTY);
}

std::string PipeFile::DisplayPath() const {
  if (dentry()) return FileDescription::DisplayPath();
  return absl::StrCat("pipe:[", pipe_->ino(), "]");
}

Result<FileRef> PipeFile::Reopen(int flags) {
  // O_RDWR on a pipe is allowed, as in Linux; an anonymous pipe's open
  // never waits for the other end.
  return FileRef(std::make_shared<PipeFile>(flags & ~(O_CLOEXEC | O_CREAT | O_EXCL | O_TRUNC),
                                            pipe_, dentry()));
}

Result<std::pair<FileRef, FileRef>> NewPipe(int flags, bool privileged) {
  if (flags & ~(O_NONBLOCK | O_DIRECT | O_CLOEXEC)) return Errno(EINVAL);
  int f = flags & (O_NONBLOCK | O_DIRECT);
  auto pipe = std::make_shared<Pipe>(g_next_pipe_ino.fetch_add(1));
  // alloc_pipe_info(): no more than pipe-max-size without CAP_SYS_RESOURCE.
  if (!privileged && pipe->Capacity() > PipeMaxSize()) {
    Result<size_t> set = pipe->SetCapacity(PipeMaxSize(), /*privileged=*/true);
    if (!set.ok()) return set.error();
  }
  FileRef r = std::make_shared<PipeFile>(O_RDONLY | f, pipe);
  FileRef w = std::make_shared<PipeFile>(O_WRONLY | f, pipe);
  return std::make_pair(std::move(r), std::move(w));
}

namespace {

// The Pipe of each FIFO with an open end (inode->i_pipe), by the inode's
// lock key (Inode::LockKey(): its filesystem and its device and inode
// numbers, as file locks and bound unix sockets are found): overlay and
// tmpfs may hand out more than one Inode object for a file, and two
// filesystems may number their files alike.
std::mutex g_fifo_mu;
std::map<FileLockKey, std::weak_ptr<Pipe>> g_fifos;  // by g_fifo_mu
// Ended FIFOs are swept when the table has doubled (O(1) amortised per
// open, not O(FIFOs)).
SweepSchedule g_fifo_sweeps{32};  // by g_fifo_mu

std::shared_ptr<Pipe> FifoPipe(const FileLockKey& key, ino_t ino) {
  std::lock_guard l(g_fifo_mu);
  g_fifo_sweeps.SweepIfDue(g_fifos, [](const auto& e) { return e.second.expired(); });
  auto& w = g_fifos[key];
  std::shared_ptr<Pipe> p = w.lock();
  if (!p) {
    p = std::make_shared<Pipe>(ino);
    w = p;
  }
  return p;
}

}  // namespace

Result<FileRef> OpenFifo(Task* t, std::shared_ptr<Dentry> d, ino_t ino, int flags) {
  std::shared_ptr<Pipe> pipe = FifoPipe(d->inode()->LockKey(), ino);
  int acc = flags & O_ACCMODE;
  bool nonblock = (flags & O_NONBLOCK) != 0;
  if (acc == O_WRONLY && nonblock && pipe->readers() == 0) return Errno(ENXIO);
  auto f = std::make_shared<PipeFile>(flags & ~(O_CLOEXEC | O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY),
                                      pipe, std::move(d), /*fifo=*/true);
  if (acc != O_RDWR && !(acc == O_RDONLY && nonblock)) {
    if (t == nullptr) return Errno(EAGAIN);
    SV_TRY(pipe->WaitForPartner(*t, f.get()));  // f's release undoes the open
  }
  return FileRef(std::move(f));
}

}  // namespace seedvisor::sentry
