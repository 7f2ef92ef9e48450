// Conformance tests for the /proc/PID files real programs read beyond
// stat/status/maps: auxv, limits, oom_score(_adj), cgroup, the id maps,
// fdinfo, ns/* and mem (proc(5); fs/proc/base.c, fd.c, namespaces.c).
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

std::string Self(const std::string& name) { return "/proc/self/" + name; }

// The value of the "key:" line of a /proc file ("" if none).
std::string Field(const std::string& text, const std::string& key) {
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    if (line.rfind(key + ":", 0) == 0) {
      size_t v = key.size() + 1;
      while (v < line.size() && (line[v] == ' ' || line[v] == '\t')) ++v;
      return line.substr(v);
    }
    at = end + 1;
  }
  return "";
}

bool Matches(const std::string& s, const char* pattern) {
  regex_t re;
  if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) return false;
  bool ok = regexec(&re, s.c_str(), 0, nullptr, 0) == 0;
  regfree(&re);
  return ok;
}

// Drops `cap` from the effective set (and permitted, so it stays dropped).
bool DropCap(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2];
  if (syscall(SYS_capget, &hdr, d) != 0) return false;
  d[cap / 32].effective &= ~(1u << (cap % 32));
  d[cap / 32].permitted &= ~(1u << (cap % 32));
  return syscall(SYS_capset, &hdr, d) == 0;
}

bool HasCap(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2];
  if (syscall(SYS_capget, &hdr, d) != 0) return false;
  return (d[cap / 32].effective & (1u << (cap % 32))) != 0;
}

// ------------------------------------------------------------------ stat

// The fields of /proc/self/stat after "(comm)": fields[0] is field 3 (state).
std::vector<std::string> StatFields(const std::string& path) {
  std::string text = ReadFile(path);
  std::vector<std::string> out;
  size_t close = text.rfind(')');
  if (close == std::string::npos) return out;
  size_t at = close + 2;
  while (at < text.size()) {
    size_t end = text.find_first_of(" \n", at);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

// Field N (1-based, as proc(5) numbers them) of a stat line.
unsigned long long StatField(const std::vector<std::string>& f, size_t n) {
  return n >= 3 && n - 3 < f.size() ? std::stoull(f[n - 3]) : ~0ull;
}

// 52 fields with exit_signal at 38; utime (14) counts the CPU time the
// process used, rss (24) its resident pages (as statm's second field and
// status's VmRSS), and the obsolete signal fields (31-34) are the pending,
// blocked, ignored and caught sets in decimal (do_task_stat()).
TEST(ProcStatTest, CpuTimeRssAndSignalFields) {
  // Burn at least 0.3 s of CPU: utime is in 1/100 s.
  timespec start, now;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &start);
  volatile unsigned long spin = 0;
  do {
    for (int i = 0; i < 100000; ++i) spin = spin + i;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000000000LL + (now.tv_nsec - start.tv_nsec) <
           300000000LL);
  // A resident page range the reader can see.
  const size_t kLen = 64 << 12;
  void* m = mmap(nullptr, kLen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  memset(m, 1, kLen);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ASSERT_EQ(sigprocmask(SIG_BLOCK, &block, &old), 0);
  ASSERT_EQ(raise(SIGUSR1), 0);  // stays pending
  struct sigaction ign {}, cat {}, old_ign, old_cat;
  ign.sa_handler = SIG_IGN;
  cat.sa_handler = [](int) {};
  ASSERT_EQ(sigaction(SIGUSR2, &ign, &old_ign), 0);
  ASSERT_EQ(sigaction(SIGALRM, &cat, &old_cat), 0);

  std::vector<std::string> f = StatFields("/proc/self/stat");
  ASSERT_EQ(f.size(), 50u) << "52 fields (Linux >= 3.5), exit_code last";
  EXPECT_EQ(StatField(f, 38), static_cast<unsigned long long>(SIGCHLD)) << "exit_signal";
  EXPECT_GE(StatField(f, 14) + StatField(f, 15), 20u) << "utime+stime after 0.3 s of CPU";
  std::string statm = ReadFile("/proc/self/statm");
  unsigned long long size = 0, resident = 0;
  ASSERT_EQ(sscanf(statm.c_str(), "%llu %llu", &size, &resident), 2);
  EXPECT_GE(StatField(f, 24), 64u) << "rss counts the 64 pages just written";
  EXPECT_LE(StatField(f, 24), size);
  const unsigned long long usr1 = 1ull << (SIGUSR1 - 1), usr2 = 1ull << (SIGUSR2 - 1),
                           alrm = 1ull << (SIGALRM - 1);
  EXPECT_EQ(StatField(f, 31) & usr1, usr1) << "pending";
  EXPECT_EQ(StatField(f, 32) & usr1, usr1) << "blocked";
  EXPECT_EQ(StatField(f, 33) & usr2, usr2) << "ignored";
  EXPECT_EQ(StatField(f, 34) & alrm, alrm) << "caught";
  EXPECT_EQ(StatField(f, 34) & usr2, 0u);
  // status's VmRSS is the same count, in kB.
  std::string rss = Field(ReadFile("/proc/self/status"), "VmRSS");
  EXPECT_GE(std::stoull(rss), 64u * 4) << rss;
  EXPECT_LT(std::stoull(rss), std::stoull(Field(ReadFile("/proc/self/status"), "VmSize")));

  // Take the pending SIGUSR1 back, restore everything.
  int got = 0;
  ASSERT_EQ(sigwait(&block, &got), 0);
  EXPECT_EQ(got, SIGUSR1);
  ASSERT_EQ(sigprocmask(SIG_SETMASK, &old, nullptr), 0);
  ASSERT_EQ(sigaction(SIGUSR2, &old_ign, nullptr), 0);
  ASSERT_EQ(sigaction(SIGALRM, &old_cat, nullptr), 0);
  munmap(m, kLen);
}

// ------------------------------------------------------------------ auxv

// /proc/PID/auxv is the vector the kernel put on the initial stack,
// AT_NULL pair included (auxv_read()).
TEST(ProcAuxvTest, MatchesGetauxval) {
  std::string a = ReadFile(Self("auxv"));
  ASSERT_GE(a.size(), 2 * sizeof(uint64_t));
  ASSERT_EQ(a.size() % (2 * sizeof(uint64_t)), 0u) << a.size();
  std::vector<uint64_t> v(a.size() / sizeof(uint64_t));
  memcpy(v.data(), a.data(), a.size());
  std::map<uint64_t, uint64_t> m;
  for (size_t i = 0; i + 1 < v.size(); i += 2) m[v[i]] = v[i + 1];
  EXPECT_EQ(v[v.size() - 2], uint64_t{AT_NULL});
  EXPECT_EQ(v[v.size() - 1], 0u);
  for (unsigned long key : {AT_PAGESZ, AT_PHDR, AT_PHENT, AT_PHNUM, AT_ENTRY, AT_UID, AT_EUID,
                            AT_GID, AT_EGID, AT_RANDOM, AT_CLKTCK, AT_SECURE}) {
    ASSERT_TRUE(m.count(key)) << "no key " << key;
    EXPECT_EQ(m[key], getauxval(key)) << "key " << key;
  }
  EXPECT_EQ(m[AT_PAGESZ], static_cast<uint64_t>(sysconf(_SC_PAGESIZE)));
}

// ------------------------------------------------------------------ limits

struct LimitName {
  int resource;
  const char* name;
  const char* unit;  // null: no unit column
};

// proc_pid_limits()'s table, in RLIMIT_* order.
constexpr LimitName kLimits[] = {
    {RLIMIT_CPU, "Max cpu time", "seconds"},
    {RLIMIT_FSIZE, "Max file size", "bytes"},
    {RLIMIT_DATA, "Max data size", "bytes"},
    {RLIMIT_STACK, "Max stack size", "bytes"},
    {RLIMIT_CORE, "Max core file size", "bytes"},
    {RLIMIT_RSS, "Max resident set", "bytes"},
    {RLIMIT_NPROC, "Max processes", "processes"},
    {RLIMIT_NOFILE, "Max open files", "files"},
    {RLIMIT_MEMLOCK, "Max locked memory", "bytes"},
    {RLIMIT_AS, "Max address space", "bytes"},
    {RLIMIT_LOCKS, "Max file locks", "locks"},
    {RLIMIT_SIGPENDING, "Max pending signals", "signals"},
    {RLIMIT_MSGQUEUE, "Max msgqueue size", "bytes"},
    {RLIMIT_NICE, "Max nice priority", nullptr},
    {RLIMIT_RTPRIO, "Max realtime priority", nullptr},
    {RLIMIT_RTTIME, "Max realtime timeout", "us"},
};

std::string ExpectedLimits() {
  char line[256];
  snprintf(line, sizeof(line), "%-25s %-20s %-20s %-10s\n", "Limit", "Soft Limit", "Hard Limit",
           "Units");
  std::string out = line;
  for (const LimitName& l : kLimits) {
    struct rlimit r;
    getrlimit(static_cast<__rlimit_resource>(l.resource), &r);
    std::string cur = r.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(r.rlim_cur);
    std::string max = r.rlim_max == RLIM_INFINITY ? "unlimited" : std::to_string(r.rlim_max);
    snprintf(line, sizeof(line), "%-25s %-20s %-20s ", l.name, cur.c_str(), max.c_str());
    out += line;
    if (l.unit) {
      snprintf(line, sizeof(line), "%-10s", l.unit);
      out += line;
    }
    out += "\n";
  }
  return out;
}

TEST(ProcLimitsTest, ExactTable) {
  EXPECT_EQ(ReadFile(Self("limits")), ExpectedLimits());
}

TEST(ProcLimitsTest, FollowsSetrlimit) {
  int status = RunInChild([] {
    struct rlimit r = {123, 4567};
    if (setrlimit(RLIMIT_CORE, &r) != 0) return 1;
    r = {77, 88};
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) return 2;
    std::string text = ReadFile("/proc/self/limits");
    if (text != ExpectedLimits()) return 3;
    if (text.find("Max core file size        123                  4567                 bytes     \n") ==
        std::string::npos) {
      return 4;
    }
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// ------------------------------------------------------------------ oom

int ReadInt(const std::string& path) { return atoi(ReadFile(path).c_str()); }

bool WriteText(const std::string& path, const std::string& s, int* err) {
  int fd = open(path.c_str(), O_WRONLY);
  if (fd < 0) {
    *err = errno;
    return false;
  }
  ssize_t n = write(fd, s.data(), s.size());
  *err = n < 0 ? errno : 0;
  close(fd);
  return n == static_cast<ssize_t>(s.size());
}

// Without CAP_SYS_RESOURCE oom_score_adj may go up, and down again only as
// far as oom_score_adj_min (0 unless a privileged write set it):
// __set_oom_adj().
TEST(ProcOomTest, ScoreAdjUnprivileged) {
  if (ReadFile(Self("oom_score_adj")) != "0\n") GTEST_SKIP() << "oom_score_adj is not 0";
  int status = RunInChild([] {
    int err;
    if (HasCap(CAP_SYS_RESOURCE) && !DropCap(CAP_SYS_RESOURCE)) return 1;
    if (!WriteText("/proc/self/oom_score_adj", "500\n", &err)) return 2;
    if (ReadFile("/proc/self/oom_score_adj") != "500\n") return 3;
    // Per process: every thread's file and the child's show it.
    std::string task = "/proc/self/task/" + std::to_string(getpid()) + "/oom_score_adj";
    if (ReadFile(task) != "500\n") return 4;
    int inherited = RunInChild([] { return ReadInt("/proc/self/oom_score_adj") == 500 ? 0 : 1; });
    if (!WIFEXITED(inherited) || WEXITSTATUS(inherited) != 0) return 5;
    // Out of [-1000, 1000] or not a number: EINVAL.
    if (WriteText("/proc/self/oom_score_adj", "1001", &err) || err != EINVAL) return 6;
    if (WriteText("/proc/self/oom_score_adj", "-1001", &err) || err != EINVAL) return 7;
    if (WriteText("/proc/self/oom_score_adj", "abc", &err) || err != EINVAL) return 8;
    if (ReadFile("/proc/self/oom_score_adj") != "500\n") return 9;
    if (!WriteText("/proc/self/oom_score_adj", "300", &err)) return 10;
    if (!WriteText("/proc/self/oom_score_adj", "0", &err)) return 11;
    if (WriteText("/proc/self/oom_score_adj", "-1", &err) || err != EACCES) return 12;
    if (ReadFile("/proc/self/oom_score_adj") != "0\n") return 13;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// With CAP_SYS_RESOURCE any value, and the value written becomes the floor
// for later unprivileged writes.
TEST(ProcOomTest, ScoreAdjPrivileged) {
  if (!HasCap(CAP_SYS_RESOURCE)) GTEST_SKIP() << "needs CAP_SYS_RESOURCE";
  int status = RunInChild([] {
    int err;
    if (!WriteText("/proc/self/oom_score_adj", "-500", &err)) return 1;
    if (ReadFile("/proc/self/oom_score_adj") != "-500\n") return 2;
    if (!DropCap(CAP_SYS_RESOURCE)) return 3;
    if (WriteText("/proc/self/oom_score_adj", "-501", &err) || err != EACCES) return 4;
    if (!WriteText("/proc/self/oom_score_adj", "800", &err)) return 5;
    if (!WriteText("/proc/self/oom_score_adj", "-500", &err)) return 6;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// oom_score: (1000 + badness * 1000 / totalpages) * 2 / 3 (proc_oom_score()),
// where oom_score_adj adds adj * totalpages / 1000 to the badness and -1000
// makes the task unkillable (0).
TEST(ProcOomTest, ScoreFollowsAdj) {
  if (ReadFile(Self("oom_score_adj")) != "0\n") GTEST_SKIP() << "oom_score_adj is not 0";
  int status = RunInChild([] {
    int err;
    if (!Matches(ReadFile("/proc/self/oom_score"), "^[0-9]+\n$")) return 1;
    int neutral = ReadInt("/proc/self/oom_score");
    if (neutral < 666 || neutral > 1333) return 3;
    if (!WriteText("/proc/self/oom_score_adj", "1000", &err)) return 4;
    // At least (1000 + 999) * 2 / 3: adj * totalpages / 1000 rounds down.
    if (ReadInt("/proc/self/oom_score") < 1332) return 5;
    if (!HasCap(CAP_SYS_RESOURCE)) return 0;
    if (!WriteText("/proc/self/oom_score_adj", "-1000", &err)) return 6;
    if (ReadFile("/proc/self/oom_score") != "0\n") return 7;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// ------------------------------------------------------------------ cgroup, id maps

TEST(ProcCgroupTest, Format) {
  std::string c = ReadFile(Self("cgroup"));
  ASSERT_FALSE(c.empty());
  ASSERT_EQ(c.back(), '\n');
  // "hierarchy-ID:controller-list:cgroup-path" per line (cgroups(7)).
  EXPECT_TRUE(Matches(c, "^([0-9]+:[^:\n]*:/[^\n]*\n)+$")) << c;
  // A child starts in its parent's cgroups.
  int status = RunInChild([c] { return ReadFile("/proc/self/cgroup") == c ? 0 : 1; });
  EXPECT_EXIT_CODE(status, 0);
}

TEST(ProcIdMapTest, Format) {
  for (const char* f : {"uid_map", "gid_map"}) {
    std::string m = ReadFile(Self(f));
    // "%10u %10u %10u\n" per extent (uid_m_show()).
    EXPECT_TRUE(Matches(m, "^( *[0-9]{1,10} +[0-9]{1,10} +[0-9]{1,10}\n)+$")) << f << ": " << m;
    for (size_t at = 0; at < m.size();) {
      size_t end = m.find('\n', at);
      ASSERT_NE(end, std::string::npos) << f << ": " << m;
      EXPECT_EQ(end - at, 32u) << f << ": " << m;
      at = end + 1;
    }
  }
  std::string s = ReadFile(Self("setgroups"));
  EXPECT_TRUE(s == "allow\n" || s == "deny\n") << s;
}

// A map is written once; our own namespace's maps are already written
// (map_write(): EPERM).
TEST(ProcIdMapTest, RewriteIsEperm) {
  std::string before = ReadFile(Self("uid_map"));
  int err;
  EXPECT_FALSE(WriteText(Self("uid_map"), "0 0 1\n", &err));
  EXPECT_EQ(err, EPERM) << ErrnoName(err);
  EXPECT_FALSE(WriteText(Self("gid_map"), "0 0 1\n", &err));
  EXPECT_EQ(err, EPERM) << ErrnoName(err);
  EXPECT_EQ(ReadFile(Self("uid_map")), before);
}

// ------------------------------------------------------------------ fdinfo

TEST(ProcFdinfoTest, PosFlagsIno) {
  TempDir dir;
  std::string p = dir.Path("f");
  ASSERT_TRUE(WriteFile(p, "0123456789"));
  FileDescriptor fd(open(p.c_str(), O_RDWR | O_APPEND));
  ASSERT_OK(fd.get());
  ASSERT_EQ(lseek(fd.get(), 7, SEEK_SET), 7);
  std::string info = ReadFile(Self("fdinfo/" + std::to_string(fd.get())));
  EXPECT_TRUE(Matches(info, "^pos:\t7\nflags:\t0[0-7]+\nmnt_id:\t[0-9]+\n")) << info;
  // O_LARGEFILE is set by open(2) on 64-bit kernels and shown.
  EXPECT_EQ(Field(info, "flags"), "0102002") << info;
  struct stat st;
  ASSERT_OK(fstat(fd.get(), &st));
  EXPECT_EQ(Field(info, "ino"), std::to_string(st.st_ino)) << info;

  // The close-on-exec flag is the fd's, shown with the file's flags.
  FileDescriptor ro(open(p.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_OK(ro.get());
  std::string info2 = ReadFile(Self("fdinfo/" + std::to_string(ro.get())));
  EXPECT_EQ(Field(info2, "flags"), "02100000") << info2;
  EXPECT_EQ(Field(info2, "pos"), "0");
  // Both files are on one mount.
  EXPECT_EQ(Field(info2, "mnt_id"), Field(info, "mnt_id"));

  EXPECT_ERRNO(ENOENT, open(Self("fdinfo/999999").c_str(), O_RDONLY));
}

TEST(ProcFdinfoTest, Eventfd) {
  FileDescriptor efd(eventfd(0, EFD_NONBLOCK));
  ASSERT_OK(efd.get());
  uint64_t v = 0x1f;
  ASSERT_EQ(write(efd.get(), &v, sizeof(v)), 8);
  std::string info = ReadFile(Self("fdinfo/" + std::to_string(efd.get())));
  std::string count = Field(info, "eventfd-count");
  ASSERT_FALSE(count.empty()) << info;
  EXPECT_EQ(strtoull(count.c_str(), nullptr, 16), 0x1fu) << info;
  EXPECT_EQ(Field(info, "flags"), "04002") << info;  // O_RDWR | O_NONBLOCK
}

TEST(ProcFdinfoTest, ListsOpenFds) {
  FileDescriptor fd(open("/dev/null", O_RDONLY));
  ASSERT_OK(fd.get());
  struct stat st;
  ASSERT_OK(stat(Self("fdinfo/" + std::to_string(fd.get())).c_str(), &st));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0444u);
}

// A process's files close when it exits (exit_files(), before its parent
// can wait for it), however many readers are listing its /proc/PID/fd and
// fdinfo or reading an fdinfo file meanwhile: the write end of a pipe
// that only the child held reads as end of file once the child is a
// zombie, and its fdinfo is ENOENT. Old seedsc: a reader's copy of the
// child's fd table (an fdinfo read) or of its files (a listing) kept the
// write end open past the exit (EAGAIN, exit 4).
TEST(ProcFdinfoTest, ReadersKeepNoFileOfAnExitedProcessOpen) {
  ProcReaders readers({{"fd/", "fdinfo/"}, {"fdinfo/2"}});
  int bad = 0;
  const int64_t until = NowMs() + 10000;
  for (int i = 0; i < 200 && bad == 0 && NowMs() < until; ++i) {
    int p[2], go[2];
    if (pipe(p) != 0 || pipe(go) != 0) {
      bad = 1;
      break;
    }
    const pid_t c = fork();
    if (c == 0) {
      close(p[0]);
      close(go[1]);
      for (int n = 0; n < 64; ++n) (void)!dup(p[1]);  // a longer listing
      char byte;
      (void)!read(go[0], &byte, 1);  // until the parent closes its end
      _exit(0);
    }
    close(p[1]);
    close(go[0]);
    if (c < 0 || fcntl(p[0], F_SETFL, O_NONBLOCK) != 0) {
      bad = 2;
      break;
    }
    readers.Watch(c);
    readers.AwaitRounds(2);  // the readers are at it
    close(go[1]);
    siginfo_t info;
    if (waitid(P_PID, c, &info, WEXITED | WNOWAIT) != 0) {
      bad = 3;
    } else {
      char byte;
      const ssize_t n = read(p[0], &byte, 1);
      if (n != 0) {
        bad = 4;
      } else if (open(("/proc/" + std::to_string(c) + "/fdinfo/" + std::to_string(p[1])).c_str(),
                      O_RDONLY) != -1 ||
                 errno != ENOENT) {
        bad = 5;
      }
    }
    readers.Watch(0);
    if (waitpid(c, nullptr, 0) != c && bad == 0) bad = 6;
    close(p[0]);
  }
  EXPECT_EQ(bad, 0);
}

// ------------------------------------------------------------------ ns

constexpr const char* kNsNames[] = {"cgroup", "ipc", "mnt",  "net", "pid", "pid_for_children",
                                    "time",   "time_for_children", "user", "uts"};

std::string NsType(const std::string& name) {
  size_t u = name.find("_for_children");
  return u == std::string::npos ? name : name.substr(0, u);
}

TEST(ProcNsTest, LinksNameTheirNamespace) {
  for (const char* n : kNsNames) {
    std::string link = Self(std::string("ns/") + n);
    char buf[128] = {};
    ssize_t len = readlink(link.c_str(), buf, sizeof(buf) - 1);
    ASSERT_GT(len, 0) << link << ": " << ErrnoName(errno);
    std::string target(buf, len);
    std::string prefix = NsType(n) + ":[";
    ASSERT_EQ(target.rfind(prefix, 0), 0u) << target;
    ASSERT_EQ(target.back(), ']') << target;
    uint64_t ino = strtoull(target.c_str() + prefix.size(), nullptr, 10);
    EXPECT_GT(ino, 0u) << target;
    // stat() follows the link to the namespace's nsfs inode.
    struct stat st;
    ASSERT_OK(stat(link.c_str(), &st));
    EXPECT_EQ(st.st_ino, ino) << n;
    struct stat lst;
    ASSERT_OK(lstat(link.c_str(), &lst));
    EXPECT_TRUE(S_ISLNK(lst.st_mode));
    // Opening it gives a file of that inode (what setns(2) takes).
    FileDescriptor fd(open(link.c_str(), O_RDONLY));
    ASSERT_OK(fd.get());
    struct stat fst;
    ASSERT_OK(fstat(fd.get(), &fst));
    EXPECT_EQ(fst.st_ino, ino) << n;
  }
  char buf[16];
  EXPECT_ERRNO(ENOENT, readlink(Self("ns/nosuch").c_str(), buf, sizeof(buf)));
}

TEST(ProcNsTest, SameForChildAndStable) {
  std::map<std::string, std::string> mine;
  char buf[128];
  for (const char* n : kNsNames) {
    ssize_t len = readlink(Self(std::string("ns/") + n).c_str(), buf, sizeof(buf));
    ASSERT_GT(len, 0);
    mine[n] = std::string(buf, len);
    // for_children of a process that made no namespace: its own.
    if (NsType(n) != n) {
      EXPECT_EQ(mine[n], mine[NsType(n)]);
    }
  }
  // A child, seen by itself and by its parent through /proc/PID/ns.
  int p[2];
  ASSERT_OK(pipe(p));
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(p[1]);
    char c;
    int bad = 0;
    for (const char* n : kNsNames) {
      char b[128];
      ssize_t len = readlink((std::string("/proc/self/ns/") + n).c_str(), b, sizeof(b));
      if (len <= 0 || std::string(b, len) != mine[n]) ++bad;
    }
    (void)!read(p[0], &c, 1);
    _exit(bad);
  }
  close(p[0]);
  for (const char* n : kNsNames) {
    std::string link = "/proc/" + std::to_string(child) + "/ns/" + n;
    ssize_t len = readlink(link.c_str(), buf, sizeof(buf));
    ASSERT_GT(len, 0) << link;
    EXPECT_EQ(std::string(buf, len), mine[n]) << link;
  }
  close(p[1]);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EXIT_CODE(status, 0);
}

// ------------------------------------------------------------------ mem

TEST(ProcMemTest, ReadWriteOwnMemory) {
  char data[64] = "hello from the process's own memory";
  FileDescriptor fd(open(Self("mem").c_str(), O_RDWR));
  ASSERT_OK(fd.get());
  char buf[64] = {};
  off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(data));
  ASSERT_EQ(pread(fd.get(), buf, sizeof(buf), at), static_cast<ssize_t>(sizeof(buf)));
  EXPECT_STREQ(buf, data);
  const char msg[] = "written through /proc/self/mem";
  ASSERT_EQ(pwrite(fd.get(), msg, sizeof(msg), at), static_cast<ssize_t>(sizeof(msg)));
  EXPECT_STREQ(data, msg);
  // read/write at the file offset, which lseek sets to the address.
  ASSERT_EQ(lseek(fd.get(), at, SEEK_SET), at);
  memset(buf, 0, sizeof(buf));
  ASSERT_EQ(read(fd.get(), buf, 8), 8);
  EXPECT_EQ(std::string(buf, 8), std::string(msg, 8));
  EXPECT_EQ(lseek(fd.get(), 0, SEEK_CUR), at + 8);
}

TEST(ProcMemTest, UnmappedIsEio) {
  long page = sysconf(_SC_PAGESIZE);
  void* m = mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  ASSERT_OK(munmap(static_cast<char*>(m) + page, page));
  memset(m, 'x', page);
  FileDescriptor fd(open(Self("mem").c_str(), O_RDWR));
  ASSERT_OK(fd.get());
  char buf[16];
  off_t hole = static_cast<off_t>(reinterpret_cast<uintptr_t>(m) + page);
  EXPECT_ERRNO(EIO, pread(fd.get(), buf, sizeof(buf), hole));
  EXPECT_ERRNO(EIO, pwrite(fd.get(), buf, sizeof(buf), hole));
  // Across the end of the mapping: the bytes before the hole.
  EXPECT_EQ(pread(fd.get(), buf, sizeof(buf), hole - 4), 4);
  EXPECT_EQ(std::string(buf, 4), "xxxx");
  munmap(m, page);
}

// Writes through /proc/PID/mem are forced (FOLL_FORCE): a read-only private
// mapping can be written, as a debugger sets breakpoints in text.
TEST(ProcMemTest, WritesReadOnlyPrivateMapping) {
  long page = sysconf(_SC_PAGESIZE);
  char* m = static_cast<char*>(
      mmap(nullptr, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  FileDescriptor fd(open(Self("mem").c_str(), O_RDWR));
  ASSERT_OK(fd.get());
  ASSERT_EQ(pwrite(fd.get(), "forced", 6, static_cast<off_t>(reinterpret_cast<uintptr_t>(m))), 6);
  EXPECT_EQ(std::string(m, 6), "forced");
  munmap(m, page);
}

// Reads are forced too: PROT_NONE pages, private or shared, read and (the
// private ones) write; a read stops only at a page that is not mapped
// (check_vma_flags() with FOLL_FORCE wants VM_MAYREAD, not VM_READ).
TEST(ProcMemTest, ProtNonePagesAreReachable) {
  const long page = sysconf(_SC_PAGESIZE);
  char* m = static_cast<char*>(
      mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  memset(m, 'p', 3 * page);
  ASSERT_OK(mprotect(m + page, page, PROT_NONE));
  ASSERT_OK(munmap(m + 2 * page, page));
  FileDescriptor fd(open(Self("mem").c_str(), O_RDWR));
  ASSERT_OK(fd.get());
  auto at = [](const void* p) { return static_cast<off_t>(reinterpret_cast<uintptr_t>(p)); };
  std::string buf(3 * page, '\0');
  ASSERT_EQ(pread(fd.get(), buf.data(), 100, at(m + page)), 100);
  EXPECT_EQ(buf.substr(0, 100), std::string(100, 'p'));
  // Across readable, PROT_NONE and unmapped pages: up to the hole.
  EXPECT_EQ(pread(fd.get(), buf.data(), 3 * page, at(m)), 2 * page);
  EXPECT_EQ(pread(fd.get(), buf.data(), 2 * page, at(m + page)), page);
  EXPECT_ERRNO(EIO, pread(fd.get(), buf.data(), 2 * page, at(m + 2 * page)));
  ASSERT_EQ(pwrite(fd.get(), "zz", 2, at(m + page)), 2);
  ASSERT_OK(mprotect(m + page, page, PROT_READ));
  EXPECT_EQ(std::string(m + page, 3), "zzp");
  munmap(m, 2 * page);
  char* shared = static_cast<char*>(
      mmap(nullptr, page, PROT_NONE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(shared, MAP_FAILED);
  EXPECT_EQ(pread(fd.get(), buf.data(), 8, at(shared)), 8);
  EXPECT_EQ(buf.substr(0, 8), std::string(8, '\0'));
  // A shared mapping is written only where it is writable.
  EXPECT_ERRNO(EIO, pwrite(fd.get(), "zz", 2, at(shared)));
  munmap(shared, page);
}

TEST(ProcMemTest, ReadsChildMemory) {
  static char value[32] = "parent's value";
  int p[2], q[2];
  ASSERT_OK(pipe(p));
  ASSERT_OK(pipe(q));
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    strcpy(value, "child's value");
    char c = 0;
    (void)!write(q[1], &c, 1);
    (void)!read(p[0], &c, 1);
    _exit(strcmp(value, "poked by parent") == 0 ? 0 : 1);
  }
  char c;
  ASSERT_EQ(read(q[0], &c, 1), 1);
  FileDescriptor fd(open(("/proc/" + std::to_string(child) + "/mem").c_str(), O_RDWR));
  ASSERT_OK(fd.get());
  char buf[32] = {};
  off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(value));
  ASSERT_EQ(pread(fd.get(), buf, sizeof(buf), at), 32);
  EXPECT_STREQ(buf, "child's value");
  EXPECT_STREQ(value, "parent's value");
  ASSERT_EQ(pwrite(fd.get(), "poked by parent", 16, at), 16);
  ASSERT_EQ(write(p[1], &c, 1), 1);
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EXIT_CODE(status, 0);
  for (int f : {p[0], p[1], q[0], q[1]}) close(f);
}

// Another user's process without CAP_SYS_PTRACE: no access (the file is
// 0600 and owned by the process's uid; mm_access() also refuses).
TEST(ProcMemTest, OtherUserIsEacces) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  pid_t parent = getpid();
  int status = RunInChild([parent] {
    if (setresuid(65534, 65534, 65534) != 0) return 1;
    std::string path = "/proc/" + std::to_string(parent) + "/mem";
    if (open(path.c_str(), O_RDONLY) != -1 || errno != EACCES) return 2;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// ---- Ownership of /proc/PID (task_dump_owner()) ----

// Reads everything `fd` has into a string.
std::string Slurp(int fd) {
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// /proc/PID entries belong to the task's effective ids while its process
// is dumpable, to root once a change of ids made it not (commit_creds()),
// except the world-readable directories; its own fd directory stays open
// to it either way (proc_fd_permission()).
TEST(ProcOwnerTest, FollowsDumpableAndEffectiveIds) {
  int status = RunAsNobody([] {
    if (prctl(PR_GET_DUMPABLE) != 0) return 1;  // the uid change cleared it
    struct stat st;
    if (stat("/proc/self/status", &st) != 0 || st.st_uid != 0 || st.st_gid != 0) return 2;
    if (stat("/proc/self/fd", &st) != 0 || st.st_uid != 0) return 9;
    // World-readable directories always show the effective ids.
    if (stat("/proc/self", &st) != 0 || st.st_uid != 65534 || st.st_gid != 65534) return 10;
    int fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
    if (fd < 0) return 3;
    close(fd);
    if (prctl(PR_SET_DUMPABLE, 2) != -1 || errno != EINVAL) return 4;
    if (prctl(PR_SET_DUMPABLE, 1) != 0 || prctl(PR_GET_DUMPABLE) != 1) return 5;
    if (stat("/proc/self", &st) != 0 || st.st_uid != 65534 || st.st_gid != 65534) return 6;
    if (stat("/proc/self/fd", &st) != 0 || st.st_uid != 65534) return 7;
    if (stat("/proc/self/status", &st) != 0 || st.st_uid != 65534) return 8;
    return 0;
  });
  EXPECT_EQ(status, 0);
}

// An execve with equal real and effective ids makes the process dumpable
// again: a program run after setuid() lists its own /proc/self/fd and
// owns it (`stat` runs as nobody here).
TEST(ProcOwnerTest, ExecAfterSetuidIsDumpable) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  int status = RunAsNobody([&] {
    close(p[0]);
    if (dup2(p[1], 1) != 1) return 1;
    execl("/usr/bin/stat", "stat", "-c", "%u %g", "/proc/self/fd", "/proc/self/status", nullptr);
    return 2;
  });
  close(p[1]);
  std::string out = Slurp(p[0]);
  close(p[0]);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(out, "65534 65534\n65534 65534\n");
}

}  // namespace
}  // namespace syscall_test
