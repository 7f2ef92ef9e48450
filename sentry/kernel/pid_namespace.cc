#include "sentry/kernel/pid_namespace.h"

#include <cerrno>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/ns_ino.h"

namespace seedvisor::sentry {

PidNamespace::PidNamespace(std::shared_ptr<PidNamespace> parent)
    : parent_(std::move(parent)), level_(parent_ ? parent_->level_ + 1 : 1), ino_(NextNsIno()) {}

bool PidNamespace::Contains(const PidNamespace* other) const {
  for (const PidNamespace* n = other; n != nullptr; n = n->parent_.get()) {
    if (n == this) return true;
  }
  return false;
}

int PidNamespace::Allocate(int want) {
  if (want != 0) return local_to_global_.count(want) ? -EEXIST : want;
  for (int i = 0; i < Kernel::kPidMax; ++i) {
    const int id = next_;
    // alloc_pid(): after a wrap ids start over above the init's.
    next_ = next_ >= Kernel::kPidMax - 1 ? 2 : next_ + 1;
    if (local_to_global_.count(id) == 0) {
      last_ = id;
      return id;
    }
  }
  return -1;
}

void PidNamespace::set_last_allocated(int last) {
  last_ = last;
  next_ = last + 1 >= Kernel::kPidMax ? 2 : last + 1;
}

void PidNamespace::Add(int local, int global) {
  local_to_global_[local] = global;
  global_to_local_[global] = local;
}

int PidNamespace::Local(int global) const {
  auto it = global_to_local_.find(global);
  return it == global_to_local_.end() ? 0 : it->second;
}

int PidNamespace::Global(int local) const {
  auto it = local_to_global_.find(local);
  return it == local_to_global_.end() ? 0 : it->second;
}

void PidNamespace::Remove(int global) {
  auto it = global_to_local_.find(global);
  if (it == global_to_local_.end()) return;
  local_to_global_.erase(it->second);
  global_to_local_.erase(it);
}

int PidNumbers::In(const PidNumbers* p, const PidNamespace* reader) {
  if (p == nullptr) return 0;
  const int level = reader != nullptr ? reader->level() : 0;
  if (level >= static_cast<int>(p->numbers_.size())) return 0;
  // The process's namespace at the reader's level must be the reader's.
  const PidNamespace* n = p->ns_.get();
  while (n != nullptr && n->level() > level) n = n->parent().get();
  return n == reader ? p->numbers_[static_cast<size_t>(level)] : 0;
}

}  // namespace seedvisor::sentry
