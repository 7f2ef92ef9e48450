// landlock_create_ruleset, landlock_add_rule, landlock_restrict_self
// (security/landlock/syscalls.c): the argument checks and their errnos in
// Linux's order. The rules and checks are sentry/vfs/landlock.h's; the
// domain lives in the task's credentials.
#include <fcntl.h>
#include <linux/capability.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/syscalls/sys_file_internal.h"
#include "sentry/vfs/landlock.h"

namespace seedvisor::sentry {

namespace {

constexpr uint32_t kCreateRulesetVersion = 1U << 0;  // LANDLOCK_CREATE_RULESET_VERSION
constexpr int kRulePathBeneath = 1;                  // LANDLOCK_RULE_PATH_BENEATH
constexpr size_t kPageSize = 4096;

// The fd landlock_create_ruleset(2) returns (an anon_inode in Linux):
// neither readable nor writable, only a handle on the ruleset. Pure
// sentry memory, so a sandbox fork copies it as is.
class LandlockRulesetFile : public FileDescription {
 public:
  explicit LandlockRulesetFile(uint64_t handled)
      : FileDescription(O_RDWR), ruleset_(std::make_shared<LandlockRuleset>(handled)) {}
  // fop_dummy_read()/fop_dummy_write().
  Result<size_t> Read(Task&, char*, size_t) override { return Errno(EINVAL); }
  Result<size_t> Write(Task&, const char*, size_t) override { return Errno(EINVAL); }
  std::string DisplayPath() const override { return "anon_inode:[landlock-ruleset]"; }
  LandlockRuleset& ruleset() { return *ruleset_; }

 private:
  std::shared_ptr<LandlockRuleset> ruleset_;
};

// get_ruleset_from_fd(): EBADF for no file (an O_PATH fd is none to
// fdget()), EBADFD for another kind, EPERM if the fd lacks the access mode
// (`write`: FMODE_CAN_WRITE).
Result<std::shared_ptr<LandlockRulesetFile>> RulesetFromFd(Task& t, int fd, bool write) {
  SV_ASSIGN_OR_RETURN(FileRef f, t.fds().Get(fd));
  if (f->flags() & O_PATH) return Errno(EBADF);
  auto rs = std::dynamic_pointer_cast<LandlockRulesetFile>(f);
  if (rs == nullptr) return Errno(EBADFD);
  if (!(write ? rs->writable() : rs->readable())) return Errno(EPERM);
  return rs;
}

}  // namespace

SyscallReturn SysLandlockCreateRuleset(Task& t, const SyscallArgs& a) {
  UserAddr attr = a.Addr(0);
  size_t size = a.Ulong(1);
  uint32_t flags = static_cast<uint32_t>(a.Uint(2));
  if (flags != 0) {
    if (flags == kCreateRulesetVersion && attr.IsNull() && size == 0) return kLandlockAbiVersion;
    return Errno(EINVAL);
  }
  // copy_min_struct_from_user(): the struct's first field at least, a page
  // at most, and anything past what this ABI knows (handled_access_net,
  // scoped of later ABIs) zero.
  if (attr.IsNull()) return Errno(EFAULT);
  if (size < sizeof(uint64_t)) return Errno(EINVAL);
  if (size > kPageSize) return Errno(E2BIG);
  char buf[kPageSize];
  SV_TRY(t.CopyIn(attr, buf, size));
  if (std::any_of(buf + sizeof(uint64_t), buf + size, [](char c) { return c != 0; })) {
    return Errno(E2BIG);
  }
  uint64_t handled;
  std::memcpy(&handled, buf, sizeof(handled));
  if ((handled | kLandlockAccessFsAll) != kLandlockAccessFsAll) return Errno(EINVAL);
  if (handled == 0) return Errno(ENOMSG);  // landlock_create_ruleset()
  auto f = std::make_shared<LandlockRulesetFile>(handled);
  SV_ASSIGN_OR_RETURN(int fd, t.fds().Install(f, true, 0, file_internal::FdLimit(t)));
  return static_cast<uint64_t>(fd);
}

SyscallReturn SysLandlockAddRule(Task& t, const SyscallArgs& a) {
  int fd = a.Int(0);
  int rule_type = a.Int(1);
  UserAddr attr = a.Addr(2);
  if (a.Uint(3) != 0) return Errno(EINVAL);  // no flags yet
  SV_ASSIGN_OR_RETURN(auto rs, RulesetFromFd(t, fd, true));
  if (rule_type != kRulePathBeneath) return Errno(EINVAL);  // LANDLOCK_RULE_NET_PORT is ABI 4
  // struct landlock_path_beneath_attr: packed, 12 bytes.
  struct __attribute__((packed)) {
    uint64_t allowed_access;
    int32_t parent_fd;
  } pb;
  static_assert(sizeof(pb) == 12);
  SV_TRY(t.CopyIn(attr, &pb, sizeof(pb)));
  if (pb.allowed_access == 0) return Errno(ENOMSG);
  uint64_t handled = rs->ruleset().handled();
  if ((pb.allowed_access | handled) != handled) return Errno(EINVAL);
  // get_path_from_fd(): any fd with a path (O_PATH too); a ruleset or a
  // file of an internal mount (pipe, socket, anon inode) is EBADFD.
  SV_ASSIGN_OR_RETURN(FileRef parent, t.fds().Get(pb.parent_fd));
  const DentryRef& d = parent->dentry();
  if (d == nullptr || (d->IsMountRoot() && d->mount() == nullptr) ||
      d->inode()->ReopensFile()) {
    return Errno(EBADFD);
  }
  SV_TRY(rs->ruleset().AddRule(d, pb.allowed_access));
  return 0;
}

SyscallReturn SysLandlockRestrictSelf(Task& t, const SyscallArgs& a) {
  int fd = a.Int(0);
  // As seccomp(2): no_new_privs, or CAP_SYS_ADMIN; checked before the flags.
  if (!t.creds().no_new_privs && !t.creds().HasCap(CAP_SYS_ADMIN)) return Errno(EPERM);
  if (a.Uint(1) != 0) return Errno(EINVAL);  // no flags in ABI 3
  SV_ASSIGN_OR_RETURN(auto rs, RulesetFromFd(t, fd, false));
  SV_ASSIGN_OR_RETURN(auto dom, LandlockDomain::Restrict(t.creds().landlock, rs->ruleset()));
  t.mutable_creds().landlock = std::move(dom);
  return 0;
}

}  // namespace seedvisor::sentry
