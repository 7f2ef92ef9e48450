// EventFdFile: eventfd(2) in sentry memory.
//
// The counter is sentry data; read(2) and write(2) follow eventfd_read()
// and eventfd_write(): a read takes the whole count (or 1 with
// EFD_SEMAPHORE) and blocks at 0, a write adds and blocks while the sum
// would pass 0xfffffffffffffffe. Blocked tasks wait on the file's
// WaitQueues, so a signal interrupts them (ERESTARTSYS).
//
// Host objects: none until the first PollFd(). That makes a *readiness
// mirror*, a host eventfd whose counter the sentry keeps at 0 (the guest's
// count is 0: POLLOUT), 1 (POLLIN|POLLOUT) or 0xfffffffffffffffe (full:
// POLLIN), so the host's poll and epoll report exactly the guest counter's
// readiness; every guest write also writes to it, so an edge-triggered
// epoll sees each write as Linux reports it. It holds no state of its own;
// a sandbox-fork child makes a new one (AdoptInForkChild).
//
//   auto f = std::make_shared<EventFdFile>(O_RDWR | O_NONBLOCK, 0, false);
#ifndef SEEDVISOR_SENTRY_FS_EVENTFD_EVENTFD_H_
#define SEEDVISOR_SENTRY_FS_EVENTFD_EVENTFD_H_

#include <cstdint>
#include <mutex>
#include <string>

#include "sentry/vfs/file.h"
#include "sentry/vfs/waiter.h"

namespace seedvisor::sentry {

class EventFdFile : public FileDescription {
 public:
  EventFdFile(int flags, uint64_t initval, bool semaphore);
  ~EventFdFile() override;

  Result<size_t> Read(Task& t, char* buf, size_t len) override;
  Result<size_t> Write(Task& t, const char* buf, size_t len) override;
  Result<struct stat> Stat() override;
  int PollFd() const override;
  short PollErrorEvents() const override;
  bool IsStream() const override { return true; }
  size_t BytesReadable() const override { return 0; }
  std::string DisplayPath() const override { return "anon_inode:[eventfd]"; }
  std::string FdInfo() override;
  absl::Status AdoptInForkChild(ForkFileContext& ctx) override;

  uint64_t count();
  // eventfd_signal(): adds `n` without blocking (the kernel's own
  // notifications, e.g. an AIO completion with IOCB_FLAG_RESFD), stopping
  // at 2^64-1, which no write may reach: an overflow, which poll reports
  // as POLLERR and a read returns.
  void Signal(uint64_t n);

 private:
  // Sets the mirror's counter for count_; `edge`: a guest write happened.
  void SyncMirrorLocked(bool edge);

  mutable std::mutex mu_;
  uint64_t count_;         // guarded by mu_
  const bool semaphore_;
  WaitQueue rd_wait_;      // guarded by mu_
  WaitQueue wr_wait_;      // guarded by mu_
  mutable int mirror_fd_ = -1;       // guarded by mu_
  mutable uint64_t mirror_val_ = 0;  // guarded by mu_
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_EVENTFD_EVENTFD_H_
