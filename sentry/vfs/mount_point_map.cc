#include "sentry/vfs/mount_point_map.h"

namespace seedvisor::sentry {

bool MountPointNames::HasPoint(std::string_view name) const {
  std::lock_guard l(mu_);
  return points_.find(name) != points_.end();
}

bool MountPointNames::HasAbove(std::string_view name) const {
  std::lock_guard l(mu_);
  return above_.find(name) != above_.end();
}

void MountPointNames::Count(Counts& c, const std::string& name, int delta) {
  auto it = c.try_emplace(name, 0).first;
  it->second += delta;
  if (it->second <= 0) c.erase(it);
}

void MountPointNames::Add(const Dentry& at) {
  std::lock_guard l(mu_);
  Count(points_, at.name(), 1);
  for (const Dentry* x = &at; x != nullptr && x->parent() != nullptr; x = x->parent().get()) {
    Count(above_, x->name(), 1);
  }
}

void MountPointNames::Remove(const Dentry& at) {
  std::lock_guard l(mu_);
  Count(points_, at.name(), -1);
  for (const Dentry* x = &at; x != nullptr && x->parent() != nullptr; x = x->parent().get()) {
    Count(above_, x->name(), -1);
  }
}

void MountPointMap::Set(const Dentry* at, Mount* m) {
  auto [it, added] = map_.try_emplace(at, m);
  if (!added) {
    it->second = m;
    return;
  }
  if (names_) names_->Add(*at);
}

bool MountPointMap::Erase(const Dentry* at) {
  auto it = map_.find(at);
  if (it == map_.end()) return false;
  Erase(it);
  return true;
}

MountPointMap::Map::const_iterator MountPointMap::Erase(Map::const_iterator it) {
  if (names_) names_->Remove(*it->first);
  return map_.erase(it);
}

void MountPointMap::Clear() {
  for (Map::const_iterator it = map_.cbegin(); it != map_.cend();) it = Erase(it);
}

}  // namespace seedvisor::sentry
