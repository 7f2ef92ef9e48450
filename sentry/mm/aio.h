// AioContexts: the Linux native AIO contexts of one address space (Linux's
// mm->ioctx_table); the syscalls that use them are in
// sentry/syscalls/sys_aio.cc.
//
// A context's completion ring lives in guest memory, laid out as Linux's
// struct aio_ring (a header, then io_events), at the address io_setup(2)
// returns as the context id: libaio and fio read that header (and, with
// userspace reaping, the events) directly, so the ring must be where and
// what Linux makes it. The sentry keeps the tail; the head is the guest's
// (io_getevents and user-space reapers both move it). Like lookup_ioctx(),
// a context is found through the ring's `id` field in guest memory, so a
// ring the guest unmapped or overwrote names no context.
//
// A guest fork's child starts without contexts (its MM is new, and the ring
// is DONTFORK, as VM_DONTCOPY makes it on Linux); exec drops them with the
// MM; a sandbox fork copies the MM and with it every context.
//
//   SV_ASSIGN_OR_RETURN(auto ctx, mm.aio().Lookup(ring_id_read_from_guest, ctx_id));
#ifndef SEEDVISOR_SENTRY_MM_AIO_H_
#define SEEDVISOR_SENTRY_MM_AIO_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "sentry/base/errno.h"
#include "sentry/vfs/waiter.h"

namespace seedvisor::sentry {

// sentry/syscalls/sys_aio_poll.h: a context's IOCB_CMD_POLL requests in
// flight (each holds its file).
struct AioPendingPolls;

// struct aio_ring (fs/aio.c): what the guest sees at the context id.
struct AioRingHeader {
  uint32_t id;  // the context's index in AioContexts
  uint32_t nr;  // io_events in the ring
  uint32_t head;
  uint32_t tail;
  uint32_t magic;
  uint32_t compat_features;
  uint32_t incompat_features;
  uint32_t header_length;  // sizeof(AioRingHeader)
};
static_assert(sizeof(AioRingHeader) == 32);

inline constexpr uint32_t kAioRingMagic = 0xa10a10a1;
inline constexpr uint32_t kAioRingCompatFeatures = 1;

class AioContext {
 public:
  AioContext(uint64_t ring, uint64_t ring_len, uint32_t nr_events, uint32_t max_reqs)
      : ring_(ring), ring_len_(ring_len), nr_events_(nr_events), max_reqs_(max_reqs) {}

  uint64_t ring() const { return ring_; }
  uint64_t ring_len() const { return ring_len_; }
  uint32_t nr_events() const { return nr_events_; }
  // What io_setup asked for: counted against fs.aio-max-nr.
  uint32_t max_reqs() const { return max_reqs_; }
  uint32_t index() const { return index_; }

  // Guards the fields below; waiters_ wakes io_getevents callers when an
  // event arrives or the context dies.
  std::mutex mu;
  WaitQueue waiters;   // guarded by mu
  uint32_t tail = 0;   // guarded by mu: the next ring slot to fill
  bool dead = false;   // guarded by mu: io_destroy ran
  // Its polls in flight, owned here so that whatever ends the context
  // (io_destroy, exit, exec: the MM's AioContexts going) releases their
  // files. Made by the first poll; guarded by mu.
  std::shared_ptr<AioPendingPolls> polls;

 private:
  friend class AioContexts;
  const uint64_t ring_;
  const uint64_t ring_len_;
  const uint32_t nr_events_;
  const uint32_t max_reqs_;
  uint32_t index_ = 0;
};

class AioContexts {
 public:
  // fs.aio-max-nr's default: the sum of every live context's max_reqs in
  // the sandbox stays at or below it (EAGAIN past it).
  static constexpr uint64_t kMaxNr = 65536;
  // fs.aio-nr: that sum now, over every address space of this sentry (one
  // sentry is one sandbox).
  static uint64_t InUse();

  AioContexts() = default;
  ~AioContexts();
  AioContexts(const AioContexts&) = delete;
  AioContexts& operator=(const AioContexts&) = delete;

  // Takes `ctx->max_reqs()` from the sandbox's budget (EAGAIN if it does not
  // fit) and gives it an index, which the caller writes into its ring.
  Status Add(const std::shared_ptr<AioContext>& ctx);
  // The context with index `index` whose ring is at `ring` (EINVAL if none).
  Result<std::shared_ptr<AioContext>> Lookup(uint32_t index, uint64_t ring) const;
  // Forgets `ctx` and gives back its budget; false if it was not here.
  bool Remove(const std::shared_ptr<AioContext>& ctx);

 private:
  mutable std::mutex mu_;
  std::map<uint32_t, std::shared_ptr<AioContext>> by_index_;  // guarded by mu_
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_MM_AIO_H_
