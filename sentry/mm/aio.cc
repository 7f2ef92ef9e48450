#include "sentry/mm/aio.h"

#include <atomic>

namespace seedvisor::sentry {

namespace {
// fs.aio-nr of this sandbox (aio_nr in fs/aio.c).
std::atomic<uint64_t> aio_nr{0};
}  // namespace

uint64_t AioContexts::InUse() { return aio_nr.load(); }

AioContexts::~AioContexts() {
  for (const auto& [index, ctx] : by_index_) aio_nr.fetch_sub(ctx->max_reqs());
}

Status AioContexts::Add(const std::shared_ptr<AioContext>& ctx) {
  uint64_t cur = aio_nr.load();
  do {
    if (cur + ctx->max_reqs() > kMaxNr || cur + ctx->max_reqs() < cur) return Errno(EAGAIN);
  } while (!aio_nr.compare_exchange_weak(cur, cur + ctx->max_reqs()));
  std::lock_guard l(mu_);
  // ioctx_add_table(): the lowest free slot.
  uint32_t index = 0;
  for (const auto& [i, c] : by_index_) {
    if (i != index) break;
    ++index;
  }
  ctx->index_ = index;
  by_index_[index] = ctx;
  return {};
}

Result<std::shared_ptr<AioContext>> AioContexts::Lookup(uint32_t index, uint64_t ring) const {
  std::lock_guard l(mu_);
  auto it = by_index_.find(index);
  if (it == by_index_.end() || it->second->ring() != ring) return Errno(EINVAL);
  return it->second;
}

bool AioContexts::Remove(const std::shared_ptr<AioContext>& ctx) {
  std::lock_guard l(mu_);
  auto it = by_index_.find(ctx->index());
  if (it == by_index_.end() || it->second != ctx) return false;
  by_index_.erase(it);
  aio_nr.fetch_sub(ctx->max_reqs());
  return true;
}

}  // namespace seedvisor::sentry
