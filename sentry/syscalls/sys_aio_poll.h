// IOCB_CMD_POLL requests in flight (fs/aio.c's aio_poll()): a poll of a file
// that is not ready when io_submit takes it stays pending, and its event
// comes once the file is ready. Linux completes it from the file's wait
// queue; here a context's own calls do: io_submit and io_getevents complete
// every pending poll whose file is ready, and io_getevents waits on those
// files' host poll fds as well as on the ring. So the event (and the
// IOCB_FLAG_RESFD eventfd) comes with the next io_submit or io_getevents
// on the context, not on its own: a guest that only waits on the eventfd
// (epoll on it) after submitting a poll of a file not ready does not hear
// of it.
//
// The requests are kept in their context (AioContext::polls, in mm/aio.h),
// each holding a reference to its file as Linux's iocb does: whatever ends
// the context (io_destroy, or the address space going at exit or exec, as
// exit_aio() kills every context) releases them.
//
//   if (!ready) AddPendingPoll(ctx, {file, events, ev, eventfd});
//   CompleteReadyPolls(t, *ctx);   // io_submit, io_getevents
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_AIO_POLL_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_AIO_POLL_H_

#include <linux/aio_abi.h>
#include <poll.h>

#include <memory>
#include <optional>
#include <vector>

#include "sentry/mm/aio.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry::aio_internal {

struct PendingPoll {
  FileRef file;
  short events;     // with POLLERR | POLLHUP
  io_event ev;      // data and obj; res becomes the ready mask
  FileRef eventfd;  // IOCB_FLAG_RESFD's, or null
};

void AddPendingPoll(const std::shared_ptr<AioContext>& ctx, PendingPoll p);
// How many polls of `ctx` are in flight (they count against its ring).
size_t PendingPollCount(AioContext& ctx);
// Completes the polls of `ctx` whose file is ready now. Not under ctx.mu.
void CompleteReadyPolls(Task& t, AioContext& ctx);
// io_cancel: the poll whose iocb is at `obj`, taken out of flight.
std::optional<PendingPoll> TakePendingPoll(AioContext& ctx, uint64_t obj);
// io_destroy: every poll of `ctx` goes, without an event.
void DropPendingPolls(AioContext& ctx);
// The host fds (and events) that pending polls of `ctx` wait on.
std::vector<pollfd> PendingPollFds(AioContext& ctx);
// The ready mask of `p`'s file now (0: not ready).
short PollNow(const PendingPoll& p);

}  // namespace seedvisor::sentry::aio_internal

namespace seedvisor::sentry {

// AioContext::polls: its requests in flight, oldest first.
struct AioPendingPolls {
  std::vector<aio_internal::PendingPoll> polls;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_AIO_POLL_H_
