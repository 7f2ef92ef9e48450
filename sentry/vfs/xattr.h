// XattrMap: the extended attributes of one in-memory inode (tmpfs and the
// overlay's upper layer), with setxattr(2)'s XATTR_CREATE/XATTR_REPLACE
// rules. Not thread-safe: the owning inode guards it with its own lock.
// Names arrive already checked (namespace, length, permission) by
// sentry/syscalls/sys_xattr.cc.
//
//   XattrMap x;
//   SV_TRY(x.Set("user.a", "v", XATTR_CREATE));   // EEXIST the second time
//   SV_ASSIGN_OR_RETURN(std::string v, x.Get("user.a"));
#ifndef SEEDVISOR_SENTRY_VFS_XATTR_H_
#define SEEDVISOR_SENTRY_VFS_XATTR_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "sentry/base/errno.h"

namespace seedvisor::sentry {

class XattrMap {
 public:
  // ENODATA if unset.
  Result<std::string> Get(std::string_view name) const;
  // flags: XATTR_CREATE (EEXIST if set), XATTR_REPLACE (ENODATA if unset).
  Status Set(std::string_view name, std::string_view value, int flags);
  // ENODATA if unset.
  Status Remove(std::string_view name);
  // The names, sorted.
  std::vector<std::string> List() const;

 private:
  std::map<std::string, std::string, std::less<>> attrs_;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_VFS_XATTR_H_
