// membarrier(2): what QUERY offers works and what it does not offer is
// EINVAL; flags; PRIVATE_EXPEDITED only after registration (EPERM);
// registrations per process, kept by fork and dropped by exec
// (MEMBARRIER_CMD_GET_REGISTRATIONS, Linux 6.3). Whether a barrier orders
// anything is not shown here: x86 reorders a store and a later load too
// rarely for a test to catch a barrier that does nothing.
#include <errno.h>
#include <linux/membarrier.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <tuple>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr int kGetRegistrations = 1 << 9;  // MEMBARRIER_CMD_GET_REGISTRATIONS
constexpr int kSyncCore = MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE;
constexpr int kRegisterSyncCore = MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE;
constexpr int kRseq = 1 << 7;           // MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ
constexpr int kRegisterRseq = 1 << 8;   // MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ
constexpr char kExecFlag[] = "--membarrier_exec_helper";

long Membarrier(int cmd, unsigned flags = 0, int cpu = 0) {
  return syscall(SYS_membarrier, cmd, flags, cpu);
}

// Re-executed with kExecFlag: exits with the registrations exec left.
__attribute__((constructor)) void MaybeRunExecHelper(int argc, char** argv, char**) {
  if (argc >= 2 && strcmp(argv[1], kExecFlag) == 0) {
    _exit(static_cast<int>(Membarrier(kGetRegistrations)) == 0 ? 0 : 1);
  }
}

// The commands this test needs offered (every host with membarrier GLOBAL).
constexpr int kBasic = MEMBARRIER_CMD_GLOBAL | MEMBARRIER_CMD_GLOBAL_EXPEDITED |
                       MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED |
                       MEMBARRIER_CMD_PRIVATE_EXPEDITED |
                       MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED | kGetRegistrations;

long Query() { return Membarrier(MEMBARRIER_CMD_QUERY); }

TEST(MembarrierTest, QueryAndFlags) {
  const long mask = Query();
  ASSERT_GE(mask, 0) << ErrnoName(errno);
  EXPECT_EQ(mask & kBasic, kBasic) << std::hex << mask;
  EXPECT_ERRNO(EINVAL, Membarrier(MEMBARRIER_CMD_QUERY, 1));
  EXPECT_ERRNO(EINVAL, Membarrier(MEMBARRIER_CMD_GLOBAL, 1));
  EXPECT_ERRNO(EINVAL, Membarrier(-1));
  EXPECT_ERRNO(EINVAL, Membarrier(3));  // two commands at once
  EXPECT_ERRNO(EINVAL, Membarrier(1 << 10));
  EXPECT_EQ(Membarrier(MEMBARRIER_CMD_GLOBAL), 0);
  // GLOBAL_EXPEDITED needs no registration of the caller.
  EXPECT_EQ(Membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), 0);
}

// SYNC_CORE and RSEQ are offered by a kernel with them, and then follow
// the registration rule; a kernel without them says EINVAL.
TEST(MembarrierTest, OptionalCommandsFollowQuery) {
  const long mask = Query();
  ASSERT_GE(mask, 0);
  EXPECT_EQ(RunInChild([&] {
              for (auto [cmd, reg, flags] : {std::tuple{kSyncCore, kRegisterSyncCore, 0u},
                                             std::tuple{kRseq, kRegisterRseq, 1u}}) {
                if (!(mask & cmd) != !(mask & reg)) return 1;
                if (!(mask & cmd)) {
                  if (Membarrier(reg) != -1 || errno != EINVAL) return 2;
                  if (Membarrier(cmd) != -1 || errno != EINVAL) return 3;
                  continue;
                }
                if (Membarrier(cmd) != -1 || errno != EPERM) return 4;
                if (Membarrier(reg) != 0) return 5;
                if (Membarrier(cmd) != 0) return 6;
                if (Membarrier(cmd, flags, 0) != 0) return 7;
              }
              return 0;
            }),
            0);
}

TEST(MembarrierTest, PrivateExpeditedNeedsRegistration) {
  // In a child: a registration lasts as long as the process.
  int status = RunInChild([] {
    if (Membarrier(kGetRegistrations) != 0) return 1;
    if (Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != -1 || errno != EPERM) return 2;
    if (Membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) return 3;
    if (Membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) return 4;  // again: fine
    if (Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) return 5;
    if (Membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0) return 6;
    if (Membarrier(kGetRegistrations) !=
        (MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)) {
      return 7;
    }
    // A thread shares its process's registration.
    long from_thread = -2;
    std::thread([&] { from_thread = Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED); }).join();
    if (from_thread != 0) return 8;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST(MembarrierTest, ForkKeepsRegistrationsExecDropsThem) {
  const std::string self = SelfExe();
  int status = RunInChild([&] {
    if (Membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) return 1;
    int inner = RunInChild([&] {
      if (Membarrier(kGetRegistrations) != MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) return 1;
      if (Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) return 2;
      char flag[sizeof(kExecFlag)];
      memcpy(flag, kExecFlag, sizeof(kExecFlag));
      char* argv[] = {const_cast<char*>(self.c_str()), flag, nullptr};
      char* envp[] = {nullptr};
      execve(self.c_str(), argv, envp);
      return 3;
    });
    if (!WIFEXITED(inner)) return 10;
    return WEXITSTATUS(inner) == 0 ? 0 : 10 + WEXITSTATUS(inner);
  });
  EXPECT_EXIT_CODE(status, 0);
}

}  // namespace
}  // namespace syscall_test
