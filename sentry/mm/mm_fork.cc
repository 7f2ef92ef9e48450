// MM (mm.h) across forks: a guest fork's copy of the address space, and
// what a sandbox fork does to it (MAP_SHARED remapped, MADV_DONTFORK and
// MADV_WIPEONFORK applied).
#include "sentry/mm/mm.h"

#include <sys/mman.h>

#include <utility>

namespace seedvisor::sentry {

Result<std::shared_ptr<MM>> MM::Fork(platform::Context& ctx) {
  Result<std::shared_ptr<platform::AddressSpace>> as = ctx.ForkAddressSpace();
  if (!as.ok()) {
    // fork(2) fails with EAGAIN or ENOMEM (or restarts): a stub process the
    // platform could not make or tie to its zygote (ESRCH, EMFILE, ...) is
    // EAGAIN to the guest, which may try again.
    const int e = as.error().value();
    return Errno(e == ENOMEM || e == EAGAIN || e >= 512 ? e : EAGAIN);
  }
  auto child = std::make_shared<MM>(std::move(*as));
  absl::MutexLock l(&mu_);
  absl::MutexLock cl(&child->mu_);
  for (const auto& [start, v] : vmas_) {
    if (v.dontfork) {
      child->fork_unmap_.emplace_back(v.start, v.end);
      continue;
    }
    if (v.wipeonfork) child->fork_wipe_.emplace_back(v.start, v.end);
    // dup_mmap(): the child has nothing locked (VM_LOCKED_MASK cleared),
    // and no MCL_FUTURE (mm_init() keeps none of def_flags' lock bits).
    Vma copy = v;
    copy.lock = 0;
    child->vmas_.Insert(std::move(copy));
  }
  child->brk_base_ = brk_base_;
  child->brk_ = brk_;
  child->data_size_ = data_size_;
  child->mmap_base_ = mmap_base_;
  child->layout_ = layout_;
  child->membarrier_.store(membarrier_.load());
  return child;
}

void MM::MarkSharedForRemap() {
  absl::MutexLock l(&mu_);
  remap_shared_ = true;
}

Status MM::RemapSharedAfterFork() {
  absl::MutexLock l(&mu_);
  if (!remap_shared_) return {};
  for (const auto& [start, v] : vmas_) {
    if (!(v.flags & MAP_SHARED) || v.file == nullptr || v.file->DataImmutableInSandbox()) continue;
    SV_ASSIGN_OR_RETURN(int fd, v.file->MappableFdForWrite());
    SV_TRY(as_->Map(UserAddr(v.start), v.end - v.start, v.prot, v.flags, fd, v.offset));
  }
  remap_shared_ = false;
  return {};
}

void MM::WipeOnSandboxFork() {
  absl::MutexLock l(&mu_);
  for (const auto& [start, v] : vmas_) {
    if (v.wipeonfork) fork_wipe_.emplace_back(v.start, v.end);
  }
}

Status MM::ApplyForkAdvice() {
  absl::MutexLock l(&mu_);
  for (auto [start, end] : fork_unmap_) SV_TRY(as_->Unmap(UserAddr(start), end - start));
  // Private anonymous memory: dropping the pages leaves zero-fill ones.
  for (auto [start, end] : fork_wipe_) {
    SV_TRY(as_->Advise(UserAddr(start), end - start, MADV_DONTNEED));
  }
  fork_unmap_.clear();
  fork_wipe_.clear();
  return {};
}

}  // namespace seedvisor::sentry
