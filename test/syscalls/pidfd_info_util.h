// ioctl(PIDFD_GET_INFO)'s argument for the tests that ask a pidfd about its
// process (pidfd_info_test.cc, user_ns_test.cc): include/uapi/linux/pidfd.h,
// newer than this system's headers (Linux 6.13; PIDFD_INFO_EXIT 6.15).
#ifndef SEEDVISOR_TEST_SYSCALLS_PIDFD_INFO_UTIL_H_
#define SEEDVISOR_TEST_SYSCALLS_PIDFD_INFO_UTIL_H_

#include <stdint.h>
#include <sys/ioctl.h>

namespace syscall_test {

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

inline constexpr uint64_t kPidfdInfoPid = 1 << 0;
inline constexpr uint64_t kPidfdInfoCreds = 1 << 1;
inline constexpr uint64_t kPidfdInfoExit = 1 << 3;
inline const unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);

}  // namespace syscall_test

#endif  // SEEDVISOR_TEST_SYSCALLS_PIDFD_INFO_UTIL_H_
