// io_setup, io_destroy, io_getevents, io_pgetevents, io_cancel and the
// completion ring (fs/aio.c). See sys_aio.h for what runs when.
#include "sentry/syscalls/sys_aio.h"

#include <linux/aio_abi.h>
#include <sys/mman.h>

#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <vector>

#include "sentry/base/cpus.h"
#include "sentry/fs/eventfd/eventfd.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/sys_aio_poll.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/syscalls/sys_mempolicy.h"

namespace seedvisor::sentry {

using namespace file_internal;  // NOLINT

namespace aio_internal {

namespace {

constexpr uint64_t kEventsOffset = sizeof(AioRingHeader);

// The ring's memory as the kernel side sees it: pinned pages, so a
// read-only or PROT_NONE ring is still read and written (AccessForced).
bool RingRead(Task& t, uint64_t addr, void* buf, size_t len) {
  auto n = t.mm().AccessForced(UserAddr(addr), buf, len, /*write=*/false);
  return n.ok() && *n == len;
}
bool RingWrite(Task& t, uint64_t addr, const void* buf, size_t len) {
  auto n = t.mm().AccessForced(UserAddr(addr), const_cast<void*>(buf), len, /*write=*/true);
  return n.ok() && *n == len;
}

uint32_t RingHead(Task& t, AioContext& ctx) {
  uint32_t head = 0;
  RingRead(t, ctx.ring() + offsetof(AioRingHeader, head), &head, sizeof(head));
  return head % ctx.nr_events();
}

}  // namespace

Result<std::shared_ptr<AioContext>> LookupContext(Task& t, uint64_t ctx_id) {
  uint32_t index;
  if (!t.CopyIn(UserAddr(ctx_id + offsetof(AioRingHeader, id)), &index, sizeof(index)).ok()) {
    return Errno(EINVAL);
  }
  SV_ASSIGN_OR_RETURN(auto ctx, t.mm().aio().Lookup(index, ctx_id));
  std::lock_guard l(ctx->mu);
  if (ctx->dead) return Errno(EINVAL);
  return ctx;
}

bool HasRoom(Task& t, AioContext& ctx) {
  // Polls in flight hold their slot until they complete (reqs_available).
  const size_t in_flight = PendingPollCount(ctx);
  std::lock_guard l(ctx.mu);
  uint32_t head = RingHead(t, ctx);
  uint32_t used = (ctx.tail + ctx.nr_events() - head) % ctx.nr_events();
  return used + in_flight + 1 < ctx.nr_events();
}

void Complete(Task& t, AioContext& ctx, const io_event& ev, const FileRef& eventfd) {
  {
    std::lock_guard l(ctx.mu);
    if (ctx.dead) return;  // io_destroy ran meanwhile: the ring is gone
    uint32_t slot = ctx.tail;
    RingWrite(t, ctx.ring() + kEventsOffset + uint64_t{slot} * sizeof(io_event), &ev, sizeof(ev));
    ctx.tail = (slot + 1) % ctx.nr_events();
    RingWrite(t, ctx.ring() + offsetof(AioRingHeader, tail), &ctx.tail, sizeof(ctx.tail));
    ctx.waiters.NotifyAll();
  }
  if (eventfd) static_cast<EventFdFile&>(*eventfd).Signal(1);
}

}  // namespace aio_internal

using namespace aio_internal;  // NOLINT

namespace {

constexpr uint64_t kPage = 4096;

// ioctx_alloc() and aio_setup_ring(): the ring holds at least twice
// max(nr, 4 per CPU) events, plus 2, rounded up to whole pages. The
// arithmetic is Linux's 32-bit one, overflows included.
struct RingSize {
  uint32_t nr_events;
  uint64_t bytes;
};
Result<RingSize> SizeRing(uint32_t nr) {
  uint32_t cpus = static_cast<uint32_t>(CPU_COUNT(&SandboxCpus().set));
  uint32_t nr_events = std::max(nr, std::max(cpus, 1u) * 4);
  nr_events *= 2;
  if (nr_events > 0x10000000u / sizeof(io_event)) return Errno(EINVAL);
  if (nr_events == 0 || nr > AioContexts::kMaxNr) return Errno(EAGAIN);
  uint64_t bytes = sizeof(AioRingHeader) + (uint64_t{nr_events} + 2) * sizeof(io_event);
  bytes = (bytes + kPage - 1) / kPage * kPage;
  return RingSize{static_cast<uint32_t>((bytes - sizeof(AioRingHeader)) / sizeof(io_event)),
                  bytes};
}

// read_events(): one pass over the ring, copying at most `nr` events to
// `out`; advances the guest's head past them (not on EFAULT).
Result<long> ReadRing(Task& t, AioContext& ctx, UserAddr out, long nr) {
  uint32_t head = 0;
  RingRead(t, ctx.ring() + offsetof(AioRingHeader, head), &head, sizeof(head));
  const uint32_t n = ctx.nr_events();
  if (head == ctx.tail) return 0;
  head %= n;
  long got = 0;
  while (got < nr && head != ctx.tail) {
    uint32_t avail = std::min<uint64_t>((head <= ctx.tail ? ctx.tail : n) - head, nr - got);
    std::vector<io_event> evs(avail);
    RingRead(t, ctx.ring() + sizeof(AioRingHeader) + uint64_t{head} * sizeof(io_event),
             evs.data(), avail * sizeof(io_event));
    SV_TRY(t.CopyOut(out + got * sizeof(io_event), evs.data(), avail * sizeof(io_event)));
    got += avail;
    head = (head + avail) % n;
  }
  RingWrite(t, ctx.ring() + offsetof(AioRingHeader, head), &head, sizeof(head));
  return got;
}

// WaitOn(ctx.waiters) that also ends when one of `polls` (the host fds of
// polls in flight) is ready. `l` holds ctx.mu, also on return.
Status WaitForEvents(AioContext& ctx, Task& t, std::unique_lock<std::mutex>& l,
                     const std::vector<pollfd>& polls, const timespec* deadline) {
  if (polls.empty()) return WaitOn(ctx.waiters, t, l, deadline);
  int fd = polls[0].fd;
  short events = polls[0].events;
  int epfd = -1;
  if (polls.size() > 1) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) return Errno(errno);
    for (const pollfd& p : polls) {
      epoll_event e{};
      e.events = static_cast<uint32_t>(p.events);
      e.data.fd = p.fd;
      // The same host fd twice (two polls of one file): once is enough.
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, p.fd, &e) != 0 && errno != EEXIST) {
        close(epfd);
        return Errno(errno);
      }
    }
    fd = epfd;
    events = POLLIN;
  }
  ctx.waiters.Add(&t);
  l.unlock();
  Status s = TaskBlockOnFd(t, fd, events, deadline);
  l.lock();
  ctx.waiters.Remove(&t);
  if (epfd >= 0) close(epfd);
  return s;
}

// do_io_getevents(): waits until `min_nr` events are there (at most `nr`
// copied), the timeout passes (its events so far), a signal comes (EINTR,
// or the events so far), or the context is destroyed (EINVAL if none).
SyscallReturn GetEvents(Task& t, uint64_t ctx_id, long min_nr, long nr, UserAddr events,
                        UserAddr timeout) {
  timespec ts{};
  if (!timeout.IsNull()) SV_TRY(t.CopyInObj(timeout, &ts));
  SV_ASSIGN_OR_RETURN(auto ctx, LookupContext(t, ctx_id));
  if (min_nr < 0 || min_nr > nr) return Errno(EINVAL);
  bool once = !timeout.IsNull() && (ts.tv_sec < 0 || (ts.tv_sec == 0 && ts.tv_nsec <= 0));
  timespec deadline{};
  if (!timeout.IsNull() && !once) deadline = AddTimespec(MonotonicNowTimespec(), ts);
  long got = 0;
  std::unique_lock l(ctx->mu, std::defer_lock);
  for (;;) {
    CompleteReadyPolls(t, *ctx);
    const std::vector<pollfd> polls = PendingPollFds(*ctx);
    l.lock();
    auto n = ReadRing(t, *ctx, events, nr - got);
    if (!n.ok()) return got > 0 ? SyscallReturn(got) : n.error();
    got += *n;
    events = events + *n * sizeof(io_event);
    if (ctx->dead) return got > 0 ? SyscallReturn(got) : Errno(EINVAL);
    if (got >= min_nr || once) return got;
    Status s = WaitForEvents(*ctx, t, l, polls, timeout.IsNull() ? nullptr : &deadline);
    l.unlock();
    if (s.ok()) continue;
    if (s.error() == Errno(ETIMEDOUT)) {
      once = true;  // one last look, as wait_event_interruptible_hrtimeout() takes
      continue;
    }
    if (got > 0) return got;
    return Errno(t.ParkInterrupted() ? kERESTARTNOINTR : EINTR);
  }
}

}  // namespace

// io_setup(2): EFAULT for an unreadable ctxp, EINVAL unless *ctxp is 0 and
// nr_events is not; the ring is mapped in the caller, DONTFORK as
// VM_DONTCOPY makes it.
SyscallReturn SysIoSetup(Task& t, const SyscallArgs& a) {
  const uint32_t nr = a.Uint(0);
  uint64_t cur;
  SV_TRY(t.CopyInObj(a.Addr(1), &cur));
  if (cur != 0 || nr == 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(RingSize size, SizeRing(nr));
  MmapRequest req;
  req.length = size.bytes;
  req.prot = PROT_READ | PROT_WRITE;
  req.flags = MAP_PRIVATE | MAP_ANONYMOUS;
  req.name = "/[aio] (deleted)";
  SV_ASSIGN_OR_RETURN(UserAddr ring, t.mm().Mmap(req));
  MemPolicyRemapped(t, 0, 0, ring.value(), size.bytes);  // a new VMA: no memory policy
  auto undo_map = [&] { t.mm().Munmap(ring, size.bytes).ok(); };
  if (Status s = t.mm().Madvise(ring, size.bytes, MADV_DONTFORK); !s.ok()) {
    undo_map();
    return s.error();
  }
  auto ctx = std::make_shared<AioContext>(ring.value(), size.bytes, size.nr_events, nr);
  if (Status s = t.mm().aio().Add(ctx); !s.ok()) {
    undo_map();
    return s.error();
  }
  AioRingHeader h{.id = ctx->index(),
                  .nr = size.nr_events,
                  .head = 0,
                  .tail = 0,
                  .magic = kAioRingMagic,
                  .compat_features = kAioRingCompatFeatures,
                  .incompat_features = 0,
                  .header_length = sizeof(AioRingHeader)};
  uint64_t id = ring.value();
  if (!t.CopyOut(ring, &h, sizeof(h)).ok() || !t.CopyOutObj(a.Addr(1), id).ok()) {
    t.mm().aio().Remove(ctx);
    undo_map();
    return Errno(EFAULT);
  }
  return 0;
}

// io_destroy(2): kill_ioctx(): waiters see a dead context, the ring goes.
SyscallReturn SysIoDestroy(Task& t, const SyscallArgs& a) {
  SV_ASSIGN_OR_RETURN(auto ctx, LookupContext(t, a.Ulong(0)));
  if (!t.mm().aio().Remove(ctx)) return Errno(EINVAL);
  DropPendingPolls(*ctx);
  {
    std::lock_guard l(ctx->mu);
    ctx->dead = true;
    ctx->waiters.NotifyAll();
  }
  t.mm().Munmap(UserAddr(ctx->ring()), ctx->ring_len()).ok();
  return 0;
}

SyscallReturn SysIoGetevents(Task& t, const SyscallArgs& a) {
  return GetEvents(t, a.Ulong(0), a.Long(1), a.Long(2), a.Addr(3), a.Addr(4));
}

// io_pgetevents(2): io_getevents with a signal mask in force for the wait
// (struct __aio_sigset {sigmask, sigsetsize}).
SyscallReturn SysIoPgetevents(Task& t, const SyscallArgs& a) {
  timespec ts;
  if (!a.Addr(4).IsNull()) SV_TRY(t.CopyInObj(a.Addr(4), &ts));
  struct {
    uint64_t sigmask;
    uint64_t sigsetsize;
  } usig{};
  if (!a.Addr(5).IsNull()) SV_TRY(t.CopyInObj(a.Addr(5), &usig));
  SV_TRY(SwapSigmask(t, UserAddr(usig.sigmask), usig.sigsetsize));
  return GetEvents(t, a.Ulong(0), a.Long(1), a.Long(2), a.Addr(3), a.Addr(4));
}

// io_cancel(2): the iocb's aio_key must be KIOCB_KEY (0). Only a poll can
// be in flight (sys_aio_poll.h): it is cancelled (aio_poll_cancel()), its
// event comes with the file's ready mask now (0 if none), and the answer
// is EINPROGRESS. Any other request completed inside io_submit: EINVAL,
// what Linux answers for a request that is not in flight.
SyscallReturn SysIoCancel(Task& t, const SyscallArgs& a) {
  uint32_t key;
  SV_TRY(t.CopyInObj(a.Addr(1) + offsetof(struct iocb, aio_key), &key));
  if (key != 0) return Errno(EINVAL);
  SV_ASSIGN_OR_RETURN(auto ctx, LookupContext(t, a.Ulong(0)));
  std::optional<PendingPoll> p = TakePendingPoll(*ctx, a.Addr(1).value());
  if (!p) return Errno(EINVAL);
  p->ev.res = static_cast<unsigned short>(PollNow(*p));
  Complete(t, *ctx, p->ev, p->eventfd);
  return Errno(EINPROGRESS);
}

}  // namespace seedvisor::sentry
