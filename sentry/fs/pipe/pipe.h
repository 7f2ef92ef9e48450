// pipe(2) and FIFOs: a pipe is sentry memory, shared by its open ends.
//
// The data is a ring of page-sized buffers exactly as in Linux's
// fs/pipe.c: 16 slots (64 KiB) by default, F_SETPIPE_SZ rounds to a power
// of two pages; a write merges its sub-page remainder into the last buffer,
// then takes whole new slots, so PIPE_BUF atomicity, partial non-blocking
// writes, O_DIRECT packets and FIONREAD follow from the same rules. Blocked
// readers and writers wait on the pipe's WaitQueues, so a signal, the last
// writer's close (EOF) or the last reader's close (EPIPE, or the partial
// count with SIGPIPE) wakes them.
//
// Host objects: none while nobody polls. The first PollFd() of any end
// makes a *readiness mirror*: one host pipe that nobody reads or writes
// data through, with a host fd per open end in that end's access mode. The
// sentry keeps the mirror empty, partly filled or full as the guest pipe
// is, so the host kernel's pipe_poll() reports exactly Linux's POLLIN,
// POLLOUT, POLLHUP (no writer left, for a reader that saw one) and POLLERR
// (no reader) for each end, for poll, select and (host) epoll, level and
// edge triggered. It is a per-sandbox wakeup primitive holding no data;
// after a sandbox fork the child makes its own (AdoptInForkChild).
//
//   SV_ASSIGN_OR_RETURN(auto ends, NewPipe(O_NONBLOCK));  // {read, write}
//   SV_ASSIGN_OR_RETURN(size_t n, ends.second->Write(t, "x", 1));
#ifndef SEEDVISOR_SENTRY_FS_PIPE_PIPE_H_
#define SEEDVISOR_SENTRY_FS_PIPE_PIPE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sentry/vfs/file.h"
#include "sentry/vfs/waiter.h"

namespace seedvisor::sentry {

class PipeFile;

inline constexpr size_t kPipePageSize = 4096;

// /proc/sys/fs/pipe-max-size (pipe_max_size, 1 MiB unless root changes
// it): the most an unprivileged F_SETPIPE_SZ may ask, and the most a new
// pipe made without CAP_SYS_RESOURCE holds (alloc_pipe_info()).
size_t PipeMaxSize();
std::string PipeMaxSizeText();
// A write of it (proc_dopipe_max_size()): a number, rounded up as
// F_SETPIPE_SZ rounds (a power of two pages); EINVAL for anything else or
// more than 2 GiB.
Status SetPipeMaxSize(std::string_view text);

class Pipe : public std::enable_shared_from_this<Pipe> {
 public:
  explicit Pipe(uint64_t ino);
  ~Pipe();
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  uint64_t ino() const { return ino_; }

  // pipe_read(): at least one byte, or 0 at EOF (no writer), EAGAIN, or
  // ERESTARTSYS when a signal comes before any data.
  Result<size_t> Read(Task& t, char* buf, size_t len, bool nonblock);
  // pipe_write(): everything unless non-blocking (then what fits, or
  // EAGAIN), a signal or the last reader's close cut it short (then the
  // count so far). EPIPE with no reader.
  Result<size_t> Write(Task& t, const char* buf, size_t len, bool nonblock, bool packet);
  // tee(2)'s source side: copies up to `len` bytes without consuming them.
  // EAGAIN when empty with a writer left and `nonblock`, 0 at EOF.
  Result<size_t> Peek(Task& t, char* buf, size_t len, bool nonblock);
  // The state splice(2) checks before it copies: readable now (data, or no
  // writer: EOF), writable now (room, or no reader: EPIPE).
  bool ReadableNow();
  bool WritableNow();
  // Block until ReadableNow() / WritableNow() (or a signal: ERESTARTSYS).
  Status WaitReadable(Task& t);
  Status WaitWritable(Task& t);

  size_t BytesHeld();
  size_t Capacity();
  // F_SETPIPE_SZ (pipe_set_size()); `privileged` = CAP_SYS_RESOURCE.
  Result<size_t> SetCapacity(uint64_t size, bool privileged);

  // Ends come and go (PipeFile's constructor and destructor). `fifo`: an
  // open of a named pipe (fifo_open()'s rules for POLLHUP).
  void Attach(PipeFile* f, bool fifo);
  void Detach(PipeFile* f);
  int PollFdFor(PipeFile* f);
  // Sandbox fork, in the child: the readiness mirror's host fds are the
  // seed's; a mirror that existed is made anew, for every end, with the
  // same state. Once per pipe (PipeFile::AdoptInForkChild).
  absl::Status AdoptInForkChild();
  int readers();
  // fifo_open()'s wait_for_partner(): blocks `f`'s opener until the other
  // side has opened since `f` did (ERESTARTSYS on a signal).
  Status WaitForPartner(Task& t, PipeFile* f);

 private:
  struct Buffer {
    std::unique_ptr<char[]> page;
    uint32_t offset = 0;
    uint32_t len = 0;
    bool packet = false;  // O_DIRECT: read as one packet, never merged into
  };

  bool FullLocked() const { return bufs_.size() >= max_slots_; }
  size_t BytesLocked() const;
  std::unique_ptr<char[]> NewPage();
  void FreePage(std::unique_ptr<char[]> page);
  // Mirror upkeep, all under mu_. `edge`: a write happened, so readers'
  // epoll sees a new EPOLLIN edge even if the pipe was not empty (Linux
  // wakes readers on every write to a polled pipe).
  void EnsureMirrorLocked();
  void DropMirrorLocked();
  // `rfd`/`wfd`: host fds to use instead of the ends' (at creation).
  void SyncMirrorLocked(bool edge, int rfd = -1, int wfd = -1);
  int MirrorFdLocked(bool want_write) const;
  bool MirrorWrite(int fd, size_t n);
  bool MirrorRead(int fd, size_t n);
  // After a state change: wakes whoever may proceed, updates the mirror.
  void ChangedLocked(bool wrote, bool read);
  // The ends with O_ASYNC that hear about new data (`readers`) or new room
  // (kill_fasync() of fasync_readers / fasync_writers); signal them with
  // SignalAsync once mu_ is released.
  std::vector<FileRef> AsyncEndsLocked(bool readers);
  static void SignalAsync(Task& t, const std::vector<FileRef>& ends, int reason);

  const uint64_t ino_;
  std::mutex mu_;
  std::deque<Buffer> bufs_;                   // guarded by mu_
  std::vector<std::unique_ptr<char[]>> spare_;  // guarded by mu_
  size_t max_slots_ = 16;                     // guarded by mu_
  int readers_ = 0;                           // guarded by mu_
  int writers_ = 0;                           // guarded by mu_
  uint64_t r_counter_ = 0;  // readers and writers ever attached; by mu_
  uint64_t w_counter_ = 0;
  WaitQueue rd_wait_;                         // guarded by mu_
  WaitQueue wr_wait_;                         // guarded by mu_
  std::vector<PipeFile*> files_;              // guarded by mu_

  // The readiness mirror (host pipe); all guarded by mu_.
  bool mirror_ = false;
  size_t mirror_slots_ = 0;         // its capacity in slots
  std::deque<uint32_t> mirror_bufs_;  // the bytes in each of its slots
  // A host writer the mirror holds while a reader's POLLHUP is suppressed
  // and no guest writer exists; -1 otherwise.
  int mirror_placeholder_ = -1;
};

class PipeFile : public FileDescription {
 public:
  // `fifo`: opened by the name of a FIFO (`d`).
  PipeFile(int flags, std::shared_ptr<Pipe> pipe, std::shared_ptr<Dentry> d = nullptr,
           bool fifo = false);
  ~PipeFile() override;

  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;
  Result<struct stat> Stat() override;
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override;
  int PollFd() const override;
  bool IsStream() const override { return true; }
  bool Positional() const override { return false; }  // stream_open(), fifo_open()
  bool SupportsAsync() const override { return true; }
  size_t BytesReadable() const override { return pipe_->BytesHeld(); }
  std::string DisplayPath() const override;
  // The other end's direction too: reopening a pipe by /proc/PID/fd/N with
  // O_WRONLY gives a writer even through the read end (fifo_open()).
  Result<FileRef> Reopen(int flags) override;
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

  Pipe& pipe() const { return *pipe_; }

 private:
  friend class Pipe;
  const std::shared_ptr<Pipe> pipe_;
  // This end's host fd of the pipe's readiness mirror, -1 without one.
  // `suppress_hup_`: a non-blocking FIFO reader opened with no writer sees
  // no POLLHUP until a writer has come (fifo_open(), pipe_poll()). The
  // counters are the pipe's at Attach. All guarded by the pipe's mu_.
  int mirror_fd_ = -1;
  bool suppress_hup_ = false;
  uint64_t r_counter_at_open_ = 0;
  uint64_t w_counter_at_open_ = 0;
};

// `flags` may hold O_NONBLOCK and O_DIRECT (packet mode); O_CLOEXEC is the
// caller's business. Returns {read end, write end}.
// `privileged`: the caller has CAP_SYS_RESOURCE (else the pipe holds at
// most PipeMaxSize()).
Result<std::pair<FileRef, FileRef>> NewPipe(int flags, bool privileged = true);

// open(2) of a FIFO, `d`, whose inode number is `ino`: every open of the
// same FIFO (the same Inode::LockKey()) shares one Pipe while any is open. fifo(7): a read-only open
// waits for a writer and a write-only open for a reader unless O_NONBLOCK
// (then a write-only open with no reader is ENXIO); O_RDWR never waits.
// `t` null (no task to block): EAGAIN instead of waiting.
Result<FileRef> OpenFifo(Task* t, std::shared_ptr<Dentry> d, ino_t ino, int flags);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_PIPE_PIPE_H_
