// IOCB_CMD_POLL requests in flight: see sys_aio_poll.h.
#include "sentry/syscalls/sys_aio_poll.h"

#include <poll.h>

#include <mutex>
#include <utility>

#include "sentry/syscalls/sys_aio.h"

namespace seedvisor::sentry::aio_internal {

void AddPendingPoll(const std::shared_ptr<AioContext>& ctx, PendingPoll p) {
  std::lock_guard l(ctx->mu);
  if (ctx->polls == nullptr) ctx->polls = std::make_shared<AioPendingPolls>();
  ctx->polls->polls.push_back(std::move(p));
}

size_t PendingPollCount(AioContext& ctx) {
  std::lock_guard l(ctx.mu);
  return ctx.polls == nullptr ? 0 : ctx.polls->polls.size();
}

short PollNow(const PendingPoll& p) {
  const int hfd = p.file->PollFd();
  if (hfd < 0) {
    // Always ready for what such files offer (DoPoll's default mask).
    return static_cast<short>(p.events & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM));
  }
  pollfd q{hfd, p.events, 0};
  if (poll(&q, 1, 0) <= 0) return 0;
  return static_cast<short>(q.revents & (p.events | POLLERR | POLLHUP | POLLNVAL));
}

void CompleteReadyPolls(Task& t, AioContext& ctx) {
  std::vector<PendingPoll> polls;
  {
    std::lock_guard l(ctx.mu);
    if (ctx.polls == nullptr || ctx.polls->polls.empty()) return;
    polls.swap(ctx.polls->polls);
  }
  std::vector<PendingPoll> waiting;
  for (PendingPoll& p : polls) {
    const short mask = PollNow(p);
    if (mask == 0) {
      waiting.push_back(std::move(p));
      continue;
    }
    p.ev.res = static_cast<unsigned short>(mask);
    Complete(t, ctx, p.ev, p.eventfd);
  }
  if (waiting.empty()) return;
  std::unique_lock l(ctx.mu);
  if (ctx.dead || ctx.polls == nullptr) {  // io_destroy meanwhile: they go (files released unlocked)
    l.unlock();
    return;
  }
  // Ahead of any submitted meanwhile, in their order.
  for (auto& p : ctx.polls->polls) waiting.push_back(std::move(p));
  ctx.polls->polls.swap(waiting);
}

std::optional<PendingPoll> TakePendingPoll(AioContext& ctx, uint64_t obj) {
  std::lock_guard l(ctx.mu);
  if (ctx.polls == nullptr) return std::nullopt;
  auto& polls = ctx.polls->polls;
  for (auto it = polls.begin(); it != polls.end(); ++it) {
    if (it->ev.obj != obj) continue;
    PendingPoll p = std::move(*it);
    polls.erase(it);
    return p;
  }
  return std::nullopt;
}

void DropPendingPolls(AioContext& ctx) {
  std::shared_ptr<AioPendingPolls> gone;  // files released after the lock
  std::lock_guard l(ctx.mu);
  gone.swap(ctx.polls);
}

std::vector<pollfd> PendingPollFds(AioContext& ctx) {
  std::vector<pollfd> out;
  std::lock_guard l(ctx.mu);
  if (ctx.polls == nullptr) return out;
  for (const PendingPoll& p : ctx.polls->polls) {
    const int hfd = p.file->PollFd();
    if (hfd >= 0) out.push_back({hfd, p.events, 0});
  }
  return out;
}

}  // namespace seedvisor::sentry::aio_internal
