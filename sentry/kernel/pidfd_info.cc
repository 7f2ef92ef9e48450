// ioctl(PIDFD_GET_INFO) on a pidfd (Linux 6.13, fs/pidfs.c pidfd_info()):
// the process's ids in the caller's pid namespace and its credentials while
// it has not been reaped; its wait status (PIDFD_INFO_EXIT, Linux 6.15)
// once it has, and only then. Other pidfs ioctls are ENOTTY here.
#include <linux/ioctl.h>

#include <algorithm>
#include <cstdint>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/pidfd.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/user_namespace.h"

namespace seedvisor::sentry {

namespace {

// include/uapi/linux/pidfd.h.
struct PidfdInfo {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid, tgid, ppid;
  uint32_t ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exit_code;
  uint32_t coredump_mask;
  uint32_t spare1;
};
static_assert(sizeof(PidfdInfo) == 72);
constexpr size_t kSizeVer0 = 64;  // PIDFD_INFO_SIZE_VER0: up to exit_code

constexpr unsigned kPidfsMagic = 0xFF;  // PIDFS_IOCTL_MAGIC
constexpr unsigned kGetInfoNr = 11;
constexpr uint64_t kInfoPid = 1 << 0;    // always returned
constexpr uint64_t kInfoCreds = 1 << 1;  // always returned
constexpr uint64_t kInfoExit = 1 << 3;   // only when asked for

// The ids as the caller's user namespace `ns` names them
// (from_kuid_munged()).
void FillCreds(const Credentials& c, const UserNamespace* ns, PidfdInfo& info) {
  info.ruid = UserNamespace::UidSeen(ns, c.ruid);
  info.euid = UserNamespace::UidSeen(ns, c.euid);
  info.suid = UserNamespace::UidSeen(ns, c.suid);
  info.fsuid = UserNamespace::UidSeen(ns, c.fsuid);
  info.rgid = UserNamespace::GidSeen(ns, c.rgid);
  info.egid = UserNamespace::GidSeen(ns, c.egid);
  info.sgid = UserNamespace::GidSeen(ns, c.sgid);
  info.fsgid = UserNamespace::GidSeen(ns, c.fsgid);
  info.mask |= kInfoCreds;
}

}  // namespace

Result<long> PidfdFile::Ioctl(Task& t, unsigned long cmd, UserAddr arg) {
  // pidfs_ioctl_valid(): an extensible request no smaller than its first
  // version (Linux 6.18; EINVAL before).
  if (_IOC_TYPE(cmd) != kPidfsMagic || _IOC_NR(cmd) != kGetInfoNr ||
      _IOC_DIR(cmd) != (_IOC_READ | _IOC_WRITE) || _IOC_SIZE(cmd) < kSizeVer0) {
    return Errno(ENOTTY);
  }
  if (arg.IsNull()) return Errno(EINVAL);
  uint64_t mask = 0;
  SV_TRY(t.CopyInObj(arg, &mask));
  PidfdInfo info{};
  {
    Kernel& k = t.kernel();
    absl::MutexLock l(&k.mu());
    if (tg_ == nullptr) return Errno(ESRCH);
    // pid_in_current_pidns(): only a process in the caller's pid
    // namespace or below it, reaped or not. Linux 6.18.14 (and 6.19.10,
    // 7.0) says EREMOTE here; before, ESRCH, which is what the 6.15-6.18
    // kernels this ioctl follows say (and what callers that compare with
    // our uname(2) release expect).
    const PidNamespace* active = t.pid_ns();
    if (active != nullptr && !active->Contains(tg_->pid_ns.get())) return Errno(ESRCH);
    if (tg_->state == ThreadGroup::State::kReaped) {
      // Only the exit status is left, and only for who asks for it.
      if (!(mask & kInfoExit)) return Errno(ESRCH);
      info.mask = kInfoExit;
      info.exit_code = tg_->exit_status;
    } else {
      const PidNamespace* ns = t.pid_ns();
      const Task* who = tg_->leader != nullptr ? tg_->leader
                        : tg_->tasks.empty()   ? nullptr
                                               : tg_->tasks.front();
      FillCreds(who != nullptr ? who->creds() : tg_->zombie_creds, t.creds().user_ns.get(), info);
      std::shared_ptr<ThreadGroup> parent = tg_->parent.lock();
      info.ppid = parent != nullptr ? Kernel::IdIn(ns, parent->tgid()) : 0;
      info.tgid = Kernel::IdIn(ns, tg_->tgid());
      info.pid = is_thread() ? Kernel::IdIn(ns, thread_tid_) : info.tgid;
      info.mask |= kInfoPid;
      // Outside the caller's pid namespace hierarchy.
      if (info.pid == 0 || info.tgid == 0) return Errno(ESRCH);
    }
  }
  // copy_struct_to_user(): the caller's size, zero past ours.
  const size_t usize = _IOC_SIZE(cmd);
  SV_TRY(t.CopyOut(arg, &info, std::min(usize, sizeof(info))));
  if (usize > sizeof(info)) {
    static const char kZeros[256] = {};
    for (size_t off = sizeof(info); off < usize; off += sizeof(kZeros)) {
      const size_t n = std::min(sizeof(kZeros), usize - off);
      SV_TRY(t.CopyOut(UserAddr(arg.value() + off), kZeros, n));
    }
  }
  return 0L;
}

}  // namespace seedvisor::sentry
