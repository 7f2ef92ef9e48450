// System V shared memory: shmget/shmat/shmdt/shmctl as Linux behaves
// (ipc/shm.c): sizes and limits, attach addresses (SHM_RND, SHMLBA,
// SHM_REMAP), SHM_RDONLY, shm_nattch through fork, exec-free detach at exit,
// IPC_RMID while attached, permissions, /proc/sysvipc/shm.
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

class Segment {
 public:
  explicit Segment(size_t size, int mode = 0600)
      : id_(shmget(IPC_PRIVATE, size, IPC_CREAT | mode)) {}
  ~Segment() {
    if (id_ >= 0) shmctl(id_, IPC_RMID, nullptr);
  }
  int id() const { return id_; }
  struct shmid_ds Stat() const {
    struct shmid_ds ds = {};
    EXPECT_EQ(shmctl(id_, IPC_STAT, &ds), 0) << ErrnoName(errno);
    return ds;
  }

 private:
  int id_;
};

TEST(SysvShm, GetSizesAndKeys) {
  EXPECT_ERRNO(EINVAL, shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600));
  EXPECT_ERRNO(EINVAL, shmget(IPC_PRIVATE, ~size_t{0}, IPC_CREAT | 0600));
  key_t key = 0x5e780000 + getpid() % 0xffff;
  int id = shmget(key, 10000, IPC_CREAT | IPC_EXCL | 0600);
  ASSERT_GE(id, 0) << ErrnoName(errno);
  EXPECT_EQ(shmget(key, 10000, 0), id);
  EXPECT_EQ(shmget(key, 100, 0), id);
  EXPECT_ERRNO(EINVAL, shmget(key, 10001, 0));
  EXPECT_ERRNO(EEXIST, shmget(key, 10000, IPC_CREAT | IPC_EXCL | 0600));
  struct shmid_ds ds = {};
  ASSERT_EQ(shmctl(id, IPC_STAT, &ds), 0);
  EXPECT_EQ(ds.shm_segsz, 10000u);
  EXPECT_EQ(ds.shm_cpid, getpid());
  EXPECT_EQ(ds.shm_nattch, 0u);
  EXPECT_EQ(ds.shm_perm.__key, key);
  ASSERT_EQ(shmctl(id, IPC_RMID, nullptr), 0);
  EXPECT_ERRNO(ENOENT, shmget(key, 10000, 0));
  EXPECT_ERRNO(EINVAL, shmctl(id, IPC_STAT, &ds));
}

// Linux's overcommit heuristic (OVERCOMMIT_GUESS): one object larger than
// RAM and swap together is ENOMEM, unless it reserves nothing.
TEST(SysvShm, AbsurdSizesAreEnomemUnlessNoreserve) {
  struct sysinfo si;
  ASSERT_EQ(sysinfo(&si), 0);
  const size_t huge = size_t{1} << 46;
  if ((si.totalram + si.totalswap) * static_cast<uint64_t>(si.mem_unit) >= huge) {
    GTEST_SKIP() << "more than 64 TiB of RAM and swap";
  }
  if (ReadFile("/proc/sys/vm/overcommit_memory") != "0\n") GTEST_SKIP() << "overcommit mode";
  EXPECT_ERRNO(ENOMEM, shmget(IPC_PRIVATE, huge, IPC_CREAT | 0600));
  EXPECT_EQ(mmap(nullptr, huge, PROT_READ, MAP_SHARED | MAP_ANONYMOUS, -1, 0), MAP_FAILED);
  EXPECT_EQ(errno, ENOMEM);
  int id = shmget(IPC_PRIVATE, huge, IPC_CREAT | SHM_NORESERVE | 0600);
  EXPECT_GE(id, 0) << ErrnoName(errno);
  if (id >= 0) shmctl(id, IPC_RMID, nullptr);
  void *m = mmap(nullptr, huge, PROT_READ, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  EXPECT_NE(m, MAP_FAILED) << ErrnoName(errno);
  if (m != MAP_FAILED) munmap(m, huge);
}

// SHM_HUGETLB with an empty hugetlb pool (vm.nr_hugepages = 0, as the
// sandbox has it): the reservation fails (hugetlb_file_setup()); with
// SHM_NORESERVE nothing is reserved. Unprivileged callers may meet the
// RLIMIT_MEMLOCK check (EPERM) first, so only as root.
TEST(SysvShm, HugetlbWithAnEmptyPool) {
  if (geteuid() != 0) GTEST_SKIP() << "needs uid 0";
  std::string meminfo = ReadFile("/proc/meminfo");
  size_t at = meminfo.find("HugePages_Free:");
  ASSERT_NE(at, std::string::npos);
  if (std::stol(meminfo.substr(at + 15)) != 0) GTEST_SKIP() << "this host has free huge pages";
  constexpr size_t kHuge = 2 << 20;
  EXPECT_ERRNO(ENOMEM, shmget(IPC_PRIVATE, kHuge, IPC_CREAT | SHM_HUGETLB | 0600));
  int id = shmget(IPC_PRIVATE, kHuge, IPC_CREAT | SHM_HUGETLB | SHM_NORESERVE | 0600);
  EXPECT_GE(id, 0) << ErrnoName(errno);
  if (id >= 0) shmctl(id, IPC_RMID, nullptr);
}

TEST(SysvShm, AttachIsZeroedSharedAndCounted) {
  Segment s(3 * 4096 + 100);
  ASSERT_GE(s.id(), 0);
  char *a = static_cast<char *>(shmat(s.id(), nullptr, 0));
  ASSERT_NE(a, reinterpret_cast<char *>(-1)) << ErrnoName(errno);
  EXPECT_EQ(a[0], 0);
  EXPECT_EQ(a[3 * 4096 + 99], 0);
  char *b = static_cast<char *>(shmat(s.id(), nullptr, 0));
  ASSERT_NE(b, reinterpret_cast<char *>(-1));
  EXPECT_NE(a, b);
  strcpy(a, "hello");
  EXPECT_STREQ(b, "hello");
  struct shmid_ds ds = s.Stat();
  EXPECT_EQ(ds.shm_nattch, 2u);
  EXPECT_EQ(ds.shm_lpid, getpid());
  EXPECT_GT(ds.shm_atime, 0);
  ASSERT_EQ(shmdt(a), 0);
  EXPECT_EQ(s.Stat().shm_nattch, 1u);
  EXPECT_GT(s.Stat().shm_dtime, 0);
  EXPECT_ERRNO(EINVAL, shmdt(a));
  EXPECT_ERRNO(EINVAL, shmdt(b + 4096));  // not the start of an attach
  EXPECT_ERRNO(EINVAL, shmdt(b + 1));
  ASSERT_EQ(shmdt(b), 0);
  EXPECT_EQ(s.Stat().shm_nattch, 0u);
}

TEST(SysvShm, ForkInheritsAttachAndExitDetaches) {
  Segment s(4096);
  int *p = static_cast<int *>(shmat(s.id(), nullptr, 0));
  ASSERT_NE(p, reinterpret_cast<int *>(-1));
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  pid_t pid = fork();
  if (pid == 0) {
    *p = 42;  // the same memory as the parent's
    char c;
    (void)!read(pipefd[0], &c, 1);  // wait until the parent counted
    _exit(0);
  }
  for (int i = 0; i < 500 && *p != 42; ++i) usleep(2000);
  EXPECT_EQ(*p, 42);
  EXPECT_EQ(s.Stat().shm_nattch, 2u);
  ASSERT_EQ(write(pipefd[1], "x", 1), 1);
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_EQ(s.Stat().shm_nattch, 1u);
  close(pipefd[0]);
  close(pipefd[1]);
  ASSERT_EQ(shmdt(p), 0);
}

TEST(SysvShm, ExecDetaches) {
  Segment s(4096);
  void *p = shmat(s.id(), nullptr, 0);
  ASSERT_NE(p, reinterpret_cast<void *>(-1));
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sleep", "sleep", "2", nullptr);
    _exit(127);
  }
  // The child's attach goes with its old image; the child lives on.
  bool detached = false;
  for (int i = 0; i < 750 && !detached; ++i) {
    detached = s.Stat().shm_nattch == 1;
    if (!detached) usleep(2000);
  }
  EXPECT_TRUE(detached);
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), 0);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_EQ(shmdt(p), 0);
}

TEST(SysvShm, RemoveWhileAttachedLivesUntilLastDetach) {
  int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  ASSERT_GE(id, 0);
  char *a = static_cast<char *>(shmat(id, nullptr, 0));
  ASSERT_NE(a, reinterpret_cast<char *>(-1));
  strcpy(a, "still here");
  ASSERT_EQ(shmctl(id, IPC_RMID, nullptr), 0);
  EXPECT_STREQ(a, "still here");
  struct shmid_ds ds = {};
  ASSERT_EQ(shmctl(id, IPC_STAT, &ds), 0);  // still there, marked
  EXPECT_TRUE(ds.shm_perm.mode & SHM_DEST);
  EXPECT_EQ(ds.shm_perm.__key, IPC_PRIVATE);
  EXPECT_EQ(ds.shm_nattch, 1u);
  ASSERT_EQ(shmdt(a), 0);
  EXPECT_ERRNO(EINVAL, shmctl(id, IPC_STAT, &ds));
}

TEST(SysvShm, ReadOnlyAttach) {
  Segment s(4096);
  char *a = static_cast<char *>(shmat(s.id(), nullptr, SHM_RDONLY));
  ASSERT_NE(a, reinterpret_cast<char *>(-1));
  EXPECT_EQ(a[0], 0);
  EXPECT_ERRNO(EACCES, mprotect(a, 4096, PROT_READ | PROT_WRITE));
  int status = RunInChild([&] {
    a[0] = 1;  // SIGSEGV
    return 0;
  });
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) << status;
  ASSERT_EQ(shmdt(a), 0);
}

TEST(SysvShm, AttachAddresses) {
  Segment s(8192);
  // A free, page-aligned range to attach at.
  void *hole = mmap(nullptr, 4 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(hole, MAP_FAILED);
  char *base = static_cast<char *>(hole);
  ASSERT_EQ(munmap(base, 4 * 4096), 0);
  EXPECT_EQ(shmat(s.id(), base + 1, 0), reinterpret_cast<void *>(-1));
  EXPECT_EQ(errno, EINVAL);
  void *a = shmat(s.id(), base + 4096 + 5, SHM_RND);
  EXPECT_EQ(a, base + 4096);
  // Over an existing mapping: EINVAL without SHM_REMAP.
  EXPECT_EQ(shmat(s.id(), base + 4096, 0), reinterpret_cast<void *>(-1));
  EXPECT_EQ(errno, EINVAL);
  void *b = shmat(s.id(), base + 4096, SHM_REMAP);
  EXPECT_EQ(b, base + 4096);
  EXPECT_EQ(shmat(s.id(), nullptr, SHM_REMAP), reinterpret_cast<void *>(-1));
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(shmdt(b), 0);
}

TEST(SysvShm, CtlInfoAndErrors) {
  Segment s(4096);
  struct shminfo info = {};
  int max = shmctl(0, IPC_INFO, reinterpret_cast<struct shmid_ds *>(&info));
  ASSERT_GE(max, 0);
  EXPECT_EQ(info.shmmni, 4096u);
  EXPECT_EQ(info.shmmin, 1u);
  struct shm_info sinfo = {};
  ASSERT_GE(shmctl(0, SHM_INFO, reinterpret_cast<struct shmid_ds *>(&sinfo)), 0);
  EXPECT_GE(sinfo.used_ids, 1);
  struct shmid_ds ds;
  bool found = false;
  for (int i = 0; i <= max; ++i) {
    if (shmctl(i, SHM_STAT_ANY, &ds) == s.id()) found = true;
  }
  EXPECT_TRUE(found);
  EXPECT_ERRNO(EINVAL, shmctl(s.id(), 12345, &ds));
  EXPECT_ERRNO(EINVAL, shmctl(-1, IPC_STAT, &ds));
  EXPECT_ERRNO(EFAULT, shmctl(s.id(), IPC_STAT, nullptr));
  EXPECT_EQ(shmat(-1, nullptr, 0), reinterpret_cast<void *>(-1));
  EXPECT_EQ(errno, EINVAL);
}

TEST(SysvShm, Permissions) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to change uid";
  Segment s(4096, 0604);
  struct shmid_ds ds = s.Stat();
  ds.shm_perm.mode = 0644;
  ASSERT_EQ(shmctl(s.id(), IPC_SET, &ds), 0);
  EXPECT_EQ(s.Stat().shm_perm.mode & 0777, 0644);
  int status = RunInChild([&] {
    if (setgid(65534) != 0 || setuid(65534) != 0) return 10;
    if (shmat(s.id(), nullptr, 0) != reinterpret_cast<void *>(-1) || errno != EACCES) return 1;
    void *r = shmat(s.id(), nullptr, SHM_RDONLY);
    if (r == reinterpret_cast<void *>(-1)) return 2;
    if (shmctl(s.id(), IPC_RMID, nullptr) != -1 || errno != EPERM) return 3;
    if (shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600) < 0) return 4;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST(SysvShm, ProcFiles) {
  Segment s(12345, 0640);
  void *a = shmat(s.id(), nullptr, 0);
  ASSERT_NE(a, reinterpret_cast<void *>(-1));
  std::string text = ReadFile("/proc/sysvipc/shm");
  EXPECT_EQ(text.rfind("       key      shmid perms                  size  "
                       "cpid  lpid nattch",
                       0),
            0u)
      << text;
  EXPECT_NE(text.find(" " + std::to_string(s.id()) + "   640                 12345 "),
            std::string::npos)
      << text;
  std::string maps = ReadFile("/proc/self/maps");
  EXPECT_NE(maps.find("/SYSV00000000 (deleted)"), std::string::npos) << maps;
  EXPECT_EQ(ReadFile("/proc/sys/kernel/shmmni"), "4096\n");
  EXPECT_EQ(ReadFile("/proc/sys/kernel/shmmax"), "18446744073692774399\n");
  EXPECT_EQ(ReadFile("/proc/sys/kernel/shmall"), "18446744073692774399\n");
  shmdt(a);
}

}  // namespace
}  // namespace syscall_test
