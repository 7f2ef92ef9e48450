#include "sentry/vfs/xattr.h"

#include <sys/xattr.h>

namespace seedvisor::sentry {

Result<std::string> XattrMap::Get(std::string_view name) const {
  auto it = attrs_.find(name);
  if (it == attrs_.end()) return Errno(ENODATA);
  return it->second;
}

Status XattrMap::Set(std::string_view name, std::string_view value, int flags) {
  auto it = attrs_.find(name);
  if (it != attrs_.end()) {
    if (flags & XATTR_CREATE) return Errno(EEXIST);
    it->second = std::string(value);
    return {};
  }
  if (flags & XATTR_REPLACE) return Errno(ENODATA);
  attrs_.emplace(std::string(name), std::string(value));
  return {};
}

Status XattrMap::Remove(std::string_view name) {
  auto it = attrs_.find(name);
  if (it == attrs_.end()) return Errno(ENODATA);
  attrs_.erase(it);
  return {};
}

std::vector<std::string> XattrMap::List() const {
  std::vector<std::string> out;
  out.reserve(attrs_.size());
  for (const auto& [n, v] : attrs_) out.push_back(n);
  return out;
}

}  // namespace seedvisor::sentry
