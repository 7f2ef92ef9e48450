#include "sentry/kernel/keys/task_keys.h"

#include <sched.h>

#include <algorithm>

#include <map>
#include <memory>
#include <mutex>

#include "sentry/kernel/keys/key_registry.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {

KeyRegistry& KeysOf(Kernel& k) {
  // Taken only by guest tasks inside a syscall, never across a sandbox
  // fork (tasks park at syscall boundaries).
  static std::mutex mu;
  static auto* registries = new std::map<const Kernel*, std::unique_ptr<KeyRegistry>>;
  std::lock_guard l(mu);
  std::unique_ptr<KeyRegistry>& r = (*registries)[&k];
  if (r == nullptr) r = std::make_unique<KeyRegistry>();
  return *r;
}

void KeysOnClone(Task& parent, Task& child, uint64_t flags) {
  KeyRegistry& r = KeysOf(parent.kernel());
  std::lock_guard l(r.mu());
  r.PruneTasks();
  const TaskKeyrings* p = r.FindTask(parent);
  if (p == nullptr) return;
  const TaskKeyrings from = *p;  // OfTask may move entries
  TaskKeyrings& c = r.OfTask(child);
  c.session = from.session;
  c.reqkey_default = from.reqkey_default;
  c.new_thread_keyring =
      (flags & CLONE_THREAD) && (from.thread != nullptr || from.new_thread_keyring);
}

void KeysOnExec(Task& t) {
  KeyRegistry& r = KeysOf(t.kernel());
  std::lock_guard l(r.mu());
  if (TaskKeyrings* k = r.FindTask(t)) {
    k->thread.reset();
    k->new_thread_keyring = false;
  }
  r.ProcessKeyringOf(t).reset();
}

TaskKeyrings& KeyRegistry::OfTask(Task& t) {
  TaskSlot& s = tasks_[&t];
  if (s.task.lock().get() != &t) s = TaskSlot{t.weak_from_this(), TaskKeyrings{}};
  return s.keyrings;
}

TaskKeyrings* KeyRegistry::FindTask(const Task& t) {
  auto it = tasks_.find(&t);
  if (it == tasks_.end() || it->second.task.lock().get() != &t) return nullptr;
  return &it->second.keyrings;
}

std::shared_ptr<Key>& KeyRegistry::ProcessKeyringOf(Task& t) {
  ThreadGroup* tg = &t.tg();
  ProcessSlot& s = processes_[tg];
  if (s.tg.lock().get() != tg) s = ProcessSlot{t.shared_tg(), nullptr};
  return s.keyring;
}

void KeyRegistry::PruneTasks() {
  if (tasks_.size() + processes_.size() < prune_at_) return;
  std::erase_if(tasks_, [](const auto& e) { return e.second.task.expired(); });
  std::erase_if(processes_, [](const auto& e) { return e.second.tg.expired(); });
  prune_at_ = std::max<size_t>(64, 2 * (tasks_.size() + processes_.size()));
}

}  // namespace seedvisor::sentry
