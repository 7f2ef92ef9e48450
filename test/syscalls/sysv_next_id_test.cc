// kernel.sem_next_id, msg_next_id and shm_next_id (ipc/ipc_sysctl.c,
// ipc_idr_alloc()): root writes the id the next object of a family asks
// for; the object gets that id's sequence number and the first free index
// from its index on; the file reads -1 again once it is used. Each test runs
// in its own IPC namespace natively (never the host's counters); inside the
// sandbox the IPC objects are the sandbox's own.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr int kIpcMni = 32768;  // ipc_buildid(): id = seq * IPCMNI + index

struct Family {
  const char* name;
  std::function<int(key_t)> make;  // get with IPC_CREAT, -1 on failure
  std::function<void(int)> remove;
};

const Family kFamilies[] = {
    {"shm", [](key_t k) { return shmget(k, 4096, IPC_CREAT | 0600); },
     [](int id) { shmctl(id, IPC_RMID, nullptr); }},
    {"msg", [](key_t k) { return msgget(k, IPC_CREAT | 0600); },
     [](int id) { msgctl(id, IPC_RMID, nullptr); }},
    {"sem", [](key_t k) { return semget(k, 1, IPC_CREAT | 0600); },
     [](int id) { semctl(id, 0, IPC_RMID); }},
};

std::string Path(const Family& f) { return std::string("/proc/sys/kernel/") + f.name + "_next_id"; }

bool SetNextId(const Family& f, int id) {
  int fd = open(Path(f).c_str(), O_WRONLY);
  if (fd < 0) return false;
  std::string v = std::to_string(id);
  bool ok = write(fd, v.data(), v.size()) == static_cast<ssize_t>(v.size());
  close(fd);
  return ok;
}

class SysvNextId : public ::testing::TestWithParam<Family> {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root";
    // Natively a namespace of its own; the sandbox's IPC is its own already
    // (it refuses new IPC namespaces: EPERM).
    if (unshare(CLONE_NEWIPC) != 0) {
      ASSERT_EQ(errno, EPERM) << ErrnoName(errno);
    }
  }
};

TEST_P(SysvNextId, TheNextObjectTakesTheIdOnce) {
  const Family& f = GetParam();
  EXPECT_EQ(ReadFile(Path(f)), "-1\n");
  const int want = 3 * kIpcMni + 1234;
  ASSERT_TRUE(SetNextId(f, want)) << ErrnoName(errno);
  EXPECT_EQ(ReadFile(Path(f)), std::to_string(want) + "\n");
  const int id = f.make(IPC_PRIVATE);
  ASSERT_OK(id);
  EXPECT_EQ(id, want);
  EXPECT_EQ(ReadFile(Path(f)), "-1\n");  // used once
  const int next = f.make(IPC_PRIVATE);
  ASSERT_OK(next);
  EXPECT_NE(next, want);
  f.remove(next);
  f.remove(id);
}

TEST_P(SysvNextId, ATakenIndexGivesTheNextFreeOneWithTheSequence) {
  const Family& f = GetParam();
  const int want = 2 * kIpcMni + 500;
  ASSERT_TRUE(SetNextId(f, want));
  const int first = f.make(IPC_PRIVATE);
  ASSERT_EQ(first, want);
  ASSERT_TRUE(SetNextId(f, want));
  const int second = f.make(IPC_PRIVATE);
  ASSERT_OK(second);
  EXPECT_EQ(second, want + 1);  // index 501, sequence 2
  f.remove(second);
  f.remove(first);
}

TEST_P(SysvNextId, WritesAreCheckedAndNeedPrivilege) {
  const Family& f = GetParam();
  // 0 to INT_MAX (proc_dointvec_minmax: -1 comes back only by use).
  for (int bad : {-1, -2}) {
    errno = 0;
    EXPECT_FALSE(SetNextId(f, bad));
    EXPECT_EQ(errno, EINVAL) << bad;
  }
  ASSERT_TRUE(SetNextId(f, 7));
  ASSERT_TRUE(SetNextId(f, 8));
  EXPECT_EQ(ReadFile(Path(f)), "8\n");
  const int id = f.make(IPC_PRIVATE);
  EXPECT_EQ(id, 8);
  f.remove(id);
  EXPECT_EQ(ReadFile(Path(f)), "-1\n");
  // Anyone may read it (mode 0444); only CAP_SYS_ADMIN or
  // CAP_CHECKPOINT_RESTORE may open it to write (ipc_permissions()).
  EXPECT_EQ(RunAsNobody([&] {
              if (ReadFile(Path(f)) != "-1\n") return 1;
              if (open(Path(f).c_str(), O_WRONLY) >= 0) return 2;
              return errno == EACCES ? 0 : 3;
            }),
            0);
}

INSTANTIATE_TEST_SUITE_P(Families, SysvNextId, ::testing::ValuesIn(kFamilies),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace syscall_test
