// PIDFD_GET_INFO (linux/pidfd.h: Linux 6.13; PIDFD_INFO_EXIT 6.15), which
// Debian's headers predate: the request the sentry makes on its stubs'
// pidfds (platform/stub StubProcess::DeathSignal) and the only one of its
// kind the sentry's policy allows. One definition for both, beside the
// policy, so that the number allowed is the number used.
//
//   PidfdInfo info{};
//   info.mask = kPidfdInfoExit;
//   if (ioctl(pidfd, kPidfdGetInfo, &info) == 0 && (info.mask & kPidfdInfoExit)) {
//     ... info.exit_code is the reaped process's wait status ...
//   }
#ifndef SEEDVISOR_SECCOMP_PIDFD_INFO_H_
#define SEEDVISOR_SECCOMP_PIDFD_INFO_H_

#include <sys/ioctl.h>

#include <cstdint>

namespace seedvisor::seccomp {

// The kernel's struct pidfd_info up to exit_code (PIDFD_INFO_SIZE_VER0).
struct PidfdInfo {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exit_code;
};
static_assert(sizeof(PidfdInfo) == 64);

inline constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);
static_assert(kPidfdGetInfo == 0xc040ff0b);
inline constexpr uint64_t kPidfdInfoExit = 1u << 3;

}  // namespace seedvisor::seccomp

#endif  // SEEDVISOR_SECCOMP_PIDFD_INFO_H_
