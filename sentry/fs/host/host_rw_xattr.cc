// Extended attributes of a writable volume's files and directories
// (host_rw.h): the user.* namespace is the host file's own, read and
// written through /proc/self/fd/N of the inode's O_PATH fd (f*xattr refuse
// an O_PATH fd, EBADF, and so do this kernel's *xattrat forms with
// AT_EMPTY_PATH; the magic link reaches exactly that inode, never a path).
// Other namespaces never reach the host: a guest's security.capability
// would be a file capability the host honours, trusted.* and security.*
// are the host's: get and remove ENODATA, list leaves them out, set
// EOPNOTSUPP (as a filesystem without them answers). The syscall layer
// (sys_xattr.cc) has checked the name, the size, the caller's permission
// and that the object is a regular file or a directory.
#include <sys/xattr.h>

#include <string>
#include <vector>

#include "sentry/fs/host/host_rw.h"

namespace seedvisor::sentry {
namespace {

constexpr std::string_view kUser = "user.";
// XATTR_SIZE_MAX and XATTR_LIST_MAX (include/uapi/linux/limits.h): no host
// answer is longer.
constexpr size_t kXattrMax = 65536;

bool IsUser(std::string_view name) { return name.substr(0, kUser.size()) == kUser; }

}  // namespace

Result<std::string> HostRwInode::GetXattr(std::string_view name) {
  if (hidden_ || !IsUser(name)) return Errno(ENODATA);
  std::string n(name);
  std::string value(kXattrMax, '\0');
  ssize_t r = getxattr(SelfPath().c_str(), n.c_str(), value.data(), value.size());
  if (r < 0) return Errno(errno);
  value.resize(static_cast<size_t>(r));
  return value;
}

Result<std::vector<std::string>> HostRwInode::ListXattr() {
  if (hidden_) return std::vector<std::string>{};
  std::string list(kXattrMax, '\0');
  ssize_t r = listxattr(SelfPath().c_str(), list.data(), list.size());
  if (r < 0) return Errno(errno);
  std::vector<std::string> names;
  for (size_t at = 0; at < static_cast<size_t>(r);) {
    size_t end = list.find('\0', at);
    if (end == std::string::npos || end > static_cast<size_t>(r)) end = static_cast<size_t>(r);
    std::string n = list.substr(at, end - at);
    if (IsUser(n)) names.push_back(std::move(n));
    at = end + 1;
  }
  return names;
}

Status HostRwInode::SetXattr(std::string_view name, std::string_view value, int flags) {
  if (hidden_) return Errno(EACCES);
  if (!IsUser(name)) return Errno(EOPNOTSUPP);
  std::string n(name);
  if (setxattr(SelfPath().c_str(), n.c_str(), value.data(), value.size(), flags) != 0) {
    return Errno(errno);
  }
  return {};
}

Status HostRwInode::RemoveXattr(std::string_view name) {
  if (hidden_ || !IsUser(name)) return Errno(ENODATA);
  std::string n(name);
  if (removexattr(SelfPath().c_str(), n.c_str()) != 0) return Errno(errno);
  return {};
}

}  // namespace seedvisor::sentry
