// IOCB_CMD_POLL requests in flight: see sys_aio_poll.h.
#include "sentry/syscalls/sys_aio_poll.h"

#include <poll.h>

#include <map>
#include <mutex>
#include <utility>

#include "sentry/syscalls/sys_aio.h"

namespace seedvisor::sentry::aio_internal {

namespace {

struct Entry {
  std::weak_ptr<AioContext> ctx;  // a context that died leaves its entry stale
  std::vector<PendingPoll> polls;
};

// Every context's polls in flight, by context. Guarded by Mu(); never held
// while a file is polled or an event completes.
std::mutex& Mu() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::map<const AioContext*, Entry>& Table() {
  static auto* table = new std::map<const AioContext*, Entry>;
  return *table;
}

// The live entry of `ctx`, or null (also for a dead context's that had
// the same address: AddPendingPoll clears those, releasing their files
// outside the lock).
Entry* Find(const AioContext& ctx) {
  auto it = Table().find(&ctx);
  if (it == Table().end()) return nullptr;
  if (it->second.ctx.lock().get() != &ctx) return nullptr;
  return &it->second;
}

}  // namespace

void AddPendingPoll(const std::shared_ptr<AioContext>& ctx, PendingPoll p) {
  std::vector<PendingPoll> stale;  // files released after the lock
  std::lock_guard l(Mu());
  // Contexts that went away (exec, exit) without io_destroy.
  for (auto it = Table().begin(); it != Table().end();) {
    if (it->second.ctx.expired()) {
      for (auto& q : it->second.polls) stale.push_back(std::move(q));
      it = Table().erase(it);
    } else {
      ++it;
    }
  }
  Entry* e = Find(*ctx);
  if (e == nullptr) e = &(Table()[ctx.get()] = Entry{ctx, {}});
  e->polls.push_back(std::move(p));
}

size_t PendingPollCount(const AioContext& ctx) {
  std::lock_guard l(Mu());
  Entry* e = Find(ctx);
  return e == nullptr ? 0 : e->polls.size();
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
    std::lock_guard l(Mu());
    Entry* e = Find(ctx);
    if (e == nullptr || e->polls.empty()) return;
    polls.swap(e->polls);
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
  std::lock_guard l(Mu());
  Entry* e = Find(ctx);
  if (e == nullptr) return;  // destroyed meanwhile: they go with it
  // Ahead of any submitted meanwhile, in their order.
  for (auto& p : e->polls) waiting.push_back(std::move(p));
  e->polls.swap(waiting);
}

std::optional<PendingPoll> TakePendingPoll(const AioContext& ctx, uint64_t obj) {
  std::lock_guard l(Mu());
  Entry* e = Find(ctx);
  if (e == nullptr) return std::nullopt;
  for (auto it = e->polls.begin(); it != e->polls.end(); ++it) {
    if (it->ev.obj != obj) continue;
    PendingPoll p = std::move(*it);
    e->polls.erase(it);
    return p;
  }
  return std::nullopt;
}

void DropPendingPolls(const AioContext& ctx) {
  Entry gone;
  std::lock_guard l(Mu());
  auto it = Table().find(&ctx);
  if (it == Table().end()) return;
  gone = std::move(it->second);
  Table().erase(it);
}

std::vector<pollfd> PendingPollFds(const AioContext& ctx) {
  std::vector<pollfd> out;
  std::lock_guard l(Mu());
  Entry* e = Find(ctx);
  if (e == nullptr) return out;
  for (const PendingPoll& p : e->polls) {
    const int hfd = p.file->PollFd();
    if (hfd >= 0) out.push_back({hfd, p.events, 0});
  }
  return out;
}

}  // namespace seedvisor::sentry::aio_internal
