// Conformance tests for things real programs lean on: pipe sizing and
// atomicity, flock/fcntl/OFD locks between processes, child subreapers, and
// the /proc, /sys, /dev/shm and /etc files programs read at startup.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// ------------------------------------------------------------------ pipes

TEST(PipeTest, DefaultSizeIs64K) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  EXPECT_EQ(fcntl(w.get(), F_GETPIPE_SZ), 65536);
  EXPECT_EQ(fcntl(r.get(), F_GETPIPE_SZ), 65536);
}

TEST(PipeTest, SetSizeRoundsUpToPagePowerOfTwo) {
  int p[2];
  ASSERT_OK(pipe(p));
  FileDescriptor r(p[0]), w(p[1]);
  long page = sysconf(_SC_PAGESIZE);
  // pipe_set_size(): the size becomes a power-of-two number of pages.
  EXPECT_EQ(fcntl(w.get(), F_SETPIPE_SZ, 1), page);
  EXPECT_EQ(fcntl(w.get(), F_GETPIPE_SZ), page);
  EXPECT_EQ(fcntl(w.get(), F_SETPIPE_SZ, static_cast<int>(page + 1)),
            2 * page);
  EXPECT_EQ(fcntl(r.get(), F_GETPIPE_SZ), 2 * page);
  EXPECT_EQ(fcntl(w.get(), F_SETPIPE_SZ, static_cast<int>(3 * page)),
            4 * page);
  EXPECT_EQ(fcntl(w.get(), F_GETPIPE_SZ), 4 * page);
}

// Writes of at most PIPE_BUF bytes are atomic (pipe(7)): two writers'
// blocks never interleave.
TEST(PipeTest, PipeBufWritesAreNotInterleaved) {
  int p[2];
  ASSERT_OK(pipe(p));
  constexpr int kBlocks = 64;
  pid_t kids[2];
  for (int k = 0; k < 2; ++k) {
    kids[k] = fork();
    ASSERT_GE(kids[k], 0);
    if (kids[k] == 0) {
      close(p[0]);
      std::string block(PIPE_BUF, k == 0 ? 'a' : 'b');
      for (int i = 0; i < kBlocks; ++i) {
        if (write(p[1], block.data(), block.size()) !=
            static_cast<ssize_t>(block.size())) {
          _exit(1);
        }
      }
      _exit(0);
    }
  }
  close(p[1]);
  FileDescriptor r(p[0]);
  std::string all;
  char buf[8192];
  ssize_t n;
  while ((n = read(r.get(), buf, sizeof(buf))) > 0) all.append(buf, n);
  ASSERT_EQ(n, 0) << ErrnoName(errno);
  for (pid_t kid : kids) {
    int status;
    ASSERT_EQ(waitpid(kid, &status, 0), kid);
    EXPECT_EXIT_CODE(status, 0);
  }
  ASSERT_EQ(all.size(), 2u * kBlocks * PIPE_BUF);
  int as = 0;
  for (size_t off = 0; off < all.size(); off += PIPE_BUF) {
    std::string block = all.substr(off, PIPE_BUF);
    ASSERT_EQ(block, std::string(PIPE_BUF, block[0]))
        << "interleaved block at offset " << off;
    as += block[0] == 'a';
  }
  EXPECT_EQ(as, kBlocks);
}

// A non-blocking write of <= PIPE_BUF bytes that does not fit is EAGAIN and
// writes nothing (pipe(7): "all or nothing").
TEST(PipeTest, NonBlockingSmallWriteIsAllOrNothing) {
  int p[2];
  ASSERT_OK(pipe2(p, O_NONBLOCK));
  FileDescriptor r(p[0]), w(p[1]);
  const int cap = fcntl(w.get(), F_GETPIPE_SZ);
  ASSERT_EQ(cap, 65536);
  const std::string fill(cap - 100, 'x');
  ASSERT_EQ(write(w.get(), fill.data(), fill.size()),
            static_cast<ssize_t>(fill.size()));
  const std::string more(200, 'y');
  EXPECT_ERRNO(EAGAIN, write(w.get(), more.data(), more.size()));
  size_t total = 0;
  char buf[8192];
  ssize_t n;
  while ((n = read(r.get(), buf, sizeof(buf))) > 0) {
    for (ssize_t i = 0; i < n; ++i) ASSERT_EQ(buf[i], 'x');
    total += n;
  }
  EXPECT_ERRNO(EAGAIN, read(r.get(), buf, sizeof(buf)));
  EXPECT_EQ(total, fill.size());
}

TEST(PipeTest, WriteWithNoReaderIsEpipe) {
  struct sigaction ign = {}, old = {};
  ign.sa_handler = SIG_IGN;
  ASSERT_OK(sigaction(SIGPIPE, &ign, &old));
  int p[2];
  ASSERT_OK(pipe(p));
  close(p[0]);
  FileDescriptor w(p[1]);
  EXPECT_ERRNO(EPIPE, write(w.get(), "x", 1));
  sigaction(SIGPIPE, &old, nullptr);
}

// ------------------------------------------------------------------ locks

class LockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.Path("lockfile");
    ASSERT_TRUE(WriteFile(path_, std::string(200, 'z'))) << ErrnoName(errno);
  }
  int Open() const { return open(path_.c_str(), O_RDWR | O_CLOEXEC); }

  TempDir dir_;
  std::string path_;
};

TEST_F(LockTest, FlockExclusiveDeniesOtherDescription) {
  FileDescriptor fd(Open());
  ASSERT_OK(fd.get());
  ASSERT_OK(flock(fd.get(), LOCK_EX));
  int status = RunInChild([&] {
    int mine = Open();
    if (mine < 0) return 1;
    if (flock(mine, LOCK_EX | LOCK_NB) != -1 || errno != EWOULDBLOCK) return 2;
    if (flock(mine, LOCK_SH | LOCK_NB) != -1 || errno != EWOULDBLOCK) return 3;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
  // Another description in the same process is denied too.
  FileDescriptor other(Open());
  EXPECT_ERRNO(EWOULDBLOCK, flock(other.get(), LOCK_EX | LOCK_NB));
  ASSERT_OK(flock(fd.get(), LOCK_UN));
  EXPECT_OK(flock(other.get(), LOCK_EX | LOCK_NB));
}

TEST_F(LockTest, FlockSharedIsShared) {
  FileDescriptor fd(Open());
  ASSERT_OK(fd.get());
  ASSERT_OK(flock(fd.get(), LOCK_SH));
  int status = RunInChild([&] {
    int mine = Open();
    if (mine < 0) return 1;
    if (flock(mine, LOCK_EX | LOCK_NB) != -1 || errno != EWOULDBLOCK) return 2;
    if (flock(mine, LOCK_SH | LOCK_NB) != 0) return 3;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST_F(LockTest, FcntlRecordLocksBetweenProcesses) {
  FileDescriptor fd(Open());
  ASSERT_OK(fd.get());
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 10;
  fl.l_len = 50;
  ASSERT_OK(fcntl(fd.get(), F_SETLK, &fl));
  const pid_t parent = getpid();
  int status = RunInChild([&] {
    int mine = Open();
    if (mine < 0) return 1;
    struct flock q = {};
    q.l_type = F_RDLCK;
    q.l_whence = SEEK_SET;
    q.l_start = 0;
    q.l_len = 20;
    if (fcntl(mine, F_GETLK, &q) != 0) return 2;
    if (q.l_type != F_WRLCK || q.l_pid != parent || q.l_start != 10 ||
        q.l_len != 50) {
      return 3;
    }
    q.l_type = F_RDLCK;
    q.l_start = 0;
    q.l_len = 20;
    if (fcntl(mine, F_SETLK, &q) != -1 || (errno != EAGAIN && errno != EACCES))
      return 4;
    // Outside the held range is free.
    q.l_start = 100;
    q.l_len = 10;
    q.l_type = F_WRLCK;
    if (fcntl(mine, F_SETLK, &q) != 0) return 5;
    q.l_type = F_UNLCK;
    if (fcntl(mine, F_SETLK, &q) != 0) return 6;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);

  // fcntl(2): closing ANY fd of the file drops the process's record locks.
  int dup_open = Open();
  ASSERT_OK(dup_open);
  close(dup_open);
  status = RunInChild([&] {
    int mine = Open();
    if (mine < 0) return 1;
    struct flock q = {};
    q.l_type = F_WRLCK;
    q.l_whence = SEEK_SET;
    q.l_start = 0;
    q.l_len = 0;
    if (fcntl(mine, F_GETLK, &q) != 0) return 2;
    if (q.l_type != F_UNLCK) return 3;
    if (fcntl(mine, F_SETLK, &q) != 0) return 4;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// fcntl(2): a process's record locks are released when it terminates, even
// while other processes keep the file open.
TEST_F(LockTest, RecordLocksDroppedOnExit) {
  FileDescriptor fd(Open());
  ASSERT_OK(fd.get());
  int status = RunInChild([&] {
    int mine = Open();
    if (mine < 0) return 1;
    struct flock l = {};
    l.l_type = F_WRLCK;
    l.l_whence = SEEK_SET;
    l.l_start = 0;
    l.l_len = 10;
    return fcntl(mine, F_SETLK, &l) == 0 ? 0 : 2;  // and exit holding it
  });
  EXPECT_EXIT_CODE(status, 0);
  struct flock q = {};
  q.l_type = F_WRLCK;
  q.l_whence = SEEK_SET;
  q.l_start = 0;
  q.l_len = 0;
  ASSERT_OK(fcntl(fd.get(), F_GETLK, &q));
  EXPECT_EQ(q.l_type, F_UNLCK) << "held by pid " << q.l_pid;
}

TEST_F(LockTest, OfdLocksBelongToTheDescription) {
  FileDescriptor a(Open()), b(Open());
  ASSERT_OK(a.get());
  ASSERT_OK(b.get());
  struct flock fl = {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 100;
  ASSERT_OK(fcntl(a.get(), F_OFD_SETLK, &fl));

  // Same process, other description: conflicts, and the holder's pid is -1.
  struct flock q = {};
  q.l_type = F_RDLCK;
  q.l_whence = SEEK_SET;
  q.l_start = 50;
  q.l_len = 1;
  ASSERT_OK(fcntl(b.get(), F_OFD_GETLK, &q));
  EXPECT_EQ(q.l_type, F_WRLCK);
  EXPECT_EQ(q.l_pid, -1);
  EXPECT_EQ(q.l_start, 0);
  EXPECT_EQ(q.l_len, 100);
  q.l_type = F_RDLCK;
  q.l_start = 50;
  q.l_len = 1;
  q.l_pid = 0;
  EXPECT_ERRNO(EAGAIN, fcntl(b.get(), F_OFD_SETLK, &q));

  // Closing another fd of the file does not drop an OFD lock.
  int c = Open();
  ASSERT_OK(c);
  close(c);
  q.l_type = F_RDLCK;
  q.l_start = 50;
  q.l_len = 1;
  q.l_pid = 0;
  EXPECT_ERRNO(EAGAIN, fcntl(b.get(), F_OFD_SETLK, &q));

  // Unlocking through the holding description frees it.
  fl.l_type = F_UNLCK;
  ASSERT_OK(fcntl(a.get(), F_OFD_SETLK, &fl));
  q.l_type = F_WRLCK;
  q.l_pid = 0;
  EXPECT_OK(fcntl(b.get(), F_OFD_SETLK, &q));
}

// ------------------------------------------------------------- subreaper

TEST(SubreaperTest, OrphanedGrandchildIsReparentedToSubreaper) {
  int status = RunInChild([] {
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return 1;
    int on = 0;
    if (prctl(PR_GET_CHILD_SUBREAPER, &on, 0, 0, 0) != 0 || on != 1) return 2;
    const pid_t reaper = getpid();
    int gp[2];
    if (pipe(gp) != 0) return 3;
    pid_t middle = fork();
    if (middle < 0) return 4;
    if (middle == 0) {
      pid_t grandchild = fork();
      if (grandchild < 0) _exit(1);
      if (grandchild == 0) {
        // Wait (up to ~10s) to be reparented once the middle process exits.
        for (int i = 0; i < 10000 && getppid() != reaper; ++i) {
          usleep(1000);
        }
        _exit(getppid() == reaper ? 42 : 43);
      }
      if (write(gp[1], &grandchild, sizeof(grandchild)) != sizeof(grandchild))
        _exit(2);
      _exit(0);
    }
    close(gp[1]);
    pid_t grandchild = 0;
    if (read(gp[0], &grandchild, sizeof(grandchild)) != sizeof(grandchild))
      return 5;
    int st;
    if (waitpid(middle, &st, 0) != middle || !WIFEXITED(st) ||
        WEXITSTATUS(st) != 0) {
      return 6;
    }
    if (waitpid(grandchild, &st, 0) != grandchild) return 7;
    if (!WIFEXITED(st)) return 8;
    if (WEXITSTATUS(st) != 42) return 9;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// ------------------------------------------------------------ /proc files

std::string Field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      size_t v = line.find_first_not_of(" \t", key.size() + 1);
      return v == std::string::npos ? "" : line.substr(v);
    }
  }
  return "<missing " + key + ">";
}

std::string Comm() {
  char name[17] = {};
  prctl(PR_GET_NAME, name, 0, 0, 0);
  return name;
}

TEST(ProcTest, SelfStatus) {
  std::string s = ReadFile("/proc/self/status");
  EXPECT_EQ(Field(s, "Name"), Comm());
  EXPECT_EQ(Field(s, "Pid"), std::to_string(getpid()));
  EXPECT_EQ(Field(s, "PPid"), std::to_string(getppid()));
  std::istringstream uids(Field(s, "Uid"));
  uid_t real = 0, eff = 0, saved = 0, fs = 0;
  ASSERT_TRUE(uids >> real >> eff >> saved >> fs) << s;
  EXPECT_EQ(real, getuid());
  EXPECT_EQ(eff, geteuid());
}

TEST(ProcTest, SelfStat) {
  std::string s = ReadFile("/proc/self/stat");
  size_t open = s.find(" (");
  size_t close = s.rfind(") ");
  ASSERT_NE(open, std::string::npos) << s;
  ASSERT_NE(close, std::string::npos) << s;
  EXPECT_EQ(s.substr(0, open), std::to_string(getpid()));
  EXPECT_EQ(s.substr(open + 2, close - open - 2), Comm());
  std::istringstream rest(s.substr(close + 2));
  std::string state;
  pid_t ppid = 0;
  ASSERT_TRUE(rest >> state >> ppid) << s;
  EXPECT_EQ(ppid, getppid());
}

void LocalFunction() {}

TEST(ProcTest, SelfMapsHasStackAndText) {
  std::istringstream in(ReadFile("/proc/self/maps"));
  const auto fn = reinterpret_cast<uintptr_t>(&LocalFunction);
  bool stack = false, text = false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("[stack]") != std::string::npos) stack = true;
    unsigned long lo = 0, hi = 0;
    char perms[5] = {};
    if (sscanf(line.c_str(), "%lx-%lx %4s", &lo, &hi, perms) == 3 &&
        lo <= fn && fn < hi && perms[2] == 'x') {
      text = true;
    }
  }
  EXPECT_TRUE(stack);
  EXPECT_TRUE(text);
}

TEST(ProcTest, SelfMountinfoHasRoot) {
  std::istringstream in(ReadFile("/proc/self/mountinfo"));
  std::string line;
  bool root = false;
  while (std::getline(in, line)) {
    // "id parent major:minor root mountpoint options ..."
    std::istringstream f(line);
    std::string id, parent, dev, rootdir, mountpoint;
    if (f >> id >> parent >> dev >> rootdir >> mountpoint && mountpoint == "/")
      root = true;
  }
  EXPECT_TRUE(root);
}

TEST(ProcTest, SelfFdListsOpenFds) {
  TempDir dir;
  std::string path = dir.Path("f");
  ASSERT_TRUE(WriteFile(path, "x"));
  FileDescriptor fd(open(path.c_str(), O_RDONLY));
  ASSERT_OK(fd.get());
  DIR* d = opendir("/proc/self/fd");
  ASSERT_NE(d, nullptr) << ErrnoName(errno);
  std::set<int> fds;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') fds.insert(atoi(e->d_name));
  }
  closedir(d);
  EXPECT_EQ(fds.count(fd.get()), 1u);
  char target[PATH_MAX] = {};
  std::string link = "/proc/self/fd/" + std::to_string(fd.get());
  ASSERT_OK(readlink(link.c_str(), target, sizeof(target) - 1));
  EXPECT_EQ(std::string(target), path);
}

TEST(ProcTest, RandomUuid) {
  std::string a = ReadFile("/proc/sys/kernel/random/uuid");
  std::string b = ReadFile("/proc/sys/kernel/random/uuid");
  ASSERT_EQ(a.size(), 37u) << a;
  EXPECT_EQ(a[36], '\n');
  for (int i = 0; i < 36; ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      EXPECT_EQ(a[i], '-') << a;
    } else {
      EXPECT_TRUE(isxdigit(a[i]) && !isupper(a[i])) << a;
    }
  }
  EXPECT_EQ(a[14], '4') << a;                                  // version 4
  EXPECT_NE(std::string("89ab").find(a[19]), std::string::npos) << a;  // variant
  EXPECT_NE(a, b);
}

TEST(ProcTest, OsreleaseMatchesUname) {
  struct utsname u;
  ASSERT_OK(uname(&u));
  EXPECT_EQ(ReadFile("/proc/sys/kernel/osrelease"), std::string(u.release) + "\n");
}

// The release is at least 4.19 (README, "The kernel release"): glibc's
// ld.so before 2.36 refuses a shared library whose ABI tag asks for a newer
// kernel than uname(2) reports (libQt6Core.so.6 asks for 4.11), and LTP
// skips the cases of features newer than the release.
TEST(UnameTest, ReleaseIsAtLeast4_19) {
  struct utsname u;
  ASSERT_OK(uname(&u));
  unsigned major = 0, minor = 0, patch = 0;
  ASSERT_EQ(sscanf(u.release, "%u.%u.%u", &major, &minor, &patch), 3) << u.release;
  EXPECT_GE(major * 1000 + minor, 4019u) << u.release;
  EXPECT_STREQ(u.sysname, "Linux");
  EXPECT_NE(ReadFile("/proc/version").find(std::string("Linux version ") + u.release + " "),
            std::string::npos)
      << ReadFile("/proc/version");
}

// ------------------------------------------------------------ /sys files

// Parses a cpu list such as "0-3,6\n"; returns -1 if malformed.
int CountCpuList(const std::string& s) {
  if (s.empty() || s.back() != '\n') return -1;
  int count = 0;
  std::istringstream in(s.substr(0, s.size() - 1));
  std::string range;
  while (std::getline(in, range, ',')) {
    int lo, hi;
    char extra;
    if (sscanf(range.c_str(), "%d-%d%c", &lo, &hi, &extra) == 2) {
      if (hi < lo) return -1;
      count += hi - lo + 1;
    } else if (sscanf(range.c_str(), "%d%c", &lo, &extra) == 1) {
      count += 1;
    } else {
      return -1;
    }
  }
  return count;
}

TEST(SysTest, CpuOnlineAndPossible) {
  std::string online = ReadFile("/sys/devices/system/cpu/online");
  std::string possible = ReadFile("/sys/devices/system/cpu/possible");
  int n_online = CountCpuList(online);
  int n_possible = CountCpuList(possible);
  EXPECT_GT(n_online, 0) << online;
  EXPECT_GE(n_possible, n_online) << possible;
  EXPECT_EQ(n_online, sysconf(_SC_NPROCESSORS_ONLN)) << online;
}

// ------------------------------------------------------- /dev/shm, /etc

TEST(DevShmTest, IsWritableTmpfs) {
  struct statfs sfs;
  ASSERT_OK(statfs("/dev/shm", &sfs));
  EXPECT_EQ(static_cast<unsigned long>(sfs.f_type), TMPFS_MAGIC);
  std::string path = "/dev/shm/misc_test." + std::to_string(getpid());
  ASSERT_TRUE(WriteFile(path, "hello")) << ErrnoName(errno);
  EXPECT_EQ(ReadFile(path), "hello");
  EXPECT_OK(unlink(path.c_str()));
}

TEST(DevShmTest, ShmOpen) {
  std::string name = "/misc_test_shm." + std::to_string(getpid());
  int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  ASSERT_OK(fd);
  FileDescriptor owner(fd);
  ASSERT_OK(ftruncate(fd, 4096));
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED) << ErrnoName(errno);
  memcpy(p, "shared", 7);
  munmap(p, 4096);
  int fd2 = shm_open(name.c_str(), O_RDONLY, 0);
  ASSERT_OK(fd2);
  FileDescriptor second(fd2);
  char buf[7] = {};
  EXPECT_EQ(pread(fd2, buf, sizeof(buf), 0), 7);
  EXPECT_STREQ(buf, "shared");
  EXPECT_OK(shm_unlink(name.c_str()));
  EXPECT_ERRNO(ENOENT, shm_open(name.c_str(), O_RDONLY, 0));
}

TEST(EtcTest, HostsAndResolvConfReadableWhenPresent) {
  for (const char* path : {"/etc/hosts", "/etc/resolv.conf"}) {
    struct stat st;
    if (stat(path, &st) != 0) continue;
    EXPECT_EQ(ReadFile(path).rfind("<error", 0), std::string::npos) << path;
  }
}

}  // namespace
}  // namespace syscall_test
