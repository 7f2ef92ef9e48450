// Conformance tests for the rest of /proc/PID that programs read (proc(5);
// fs/proc/base.c, array.c, task_mmu.c): personality, timerslack_ns, wchan,
// io, schedstat, sessionid/loginuid, every field of stat, statm and status
// lines, smaps and smaps_rollup, comm, the task/TID directories, what
// another user may read, reads at offsets, and stable inode numbers.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

// The value of the "key:" line of a /proc file ("" if none).
std::string Field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      size_t v = key.size() + 1;
      while (v < line.size() && (line[v] == ' ' || line[v] == '\t')) ++v;
      return line.substr(v);
    }
  }
  return "";
}

uint64_t Kb(const std::string& text, const std::string& key) {
  std::string v = Field(text, key);
  return v.empty() ? ~0ull : std::stoull(v);
}

// The fields of a stat line; [0] is field 1 (pid), [2] field 3 (state).
std::vector<std::string> StatFields(const std::string& text) {
  std::vector<std::string> out;
  size_t open = text.find(" (");
  size_t close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return out;
  out.push_back(text.substr(0, open));
  out.push_back(text.substr(open + 2, close - open - 2));
  std::istringstream in(text.substr(close + 2));
  std::string f;
  while (in >> f) out.push_back(f);
  return out;
}

// Field N (1-based, as proc(5) numbers them).
std::string StatAt(const std::vector<std::string>& f, size_t n) {
  return n >= 1 && n <= f.size() ? f[n - 1] : "<none>";
}

uint64_t StatNum(const std::vector<std::string>& f, size_t n) {
  std::string s = StatAt(f, n);
  return s == "<none>" ? ~0ull : std::stoull(s);
}

std::string Self(const std::string& name) { return "/proc/self/" + name; }

// "%08x\n", as /proc/PID/personality prints.
std::string Hex8(int v) {
  char buf[16];
  snprintf(buf, sizeof(buf), "%08x\n", static_cast<unsigned>(v));
  return buf;
}

std::string Proc(pid_t pid, const std::string& name) {
  return "/proc/" + std::to_string(pid) + "/" + name;
}

// Whether opening `path` for reading fails with `err`.
bool OpenFails(const std::string& path, int err) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    char c;
    ssize_t n = read(fd, &c, 1);
    int e = errno;
    close(fd);
    return n < 0 && e == err;
  }
  return errno == err;
}

ino_t InoOf(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Runs `fn` on a second thread of this process with its tid.
void OnThread(const std::function<void(pid_t)>& fn) {
  std::atomic<int> phase{0};
  std::atomic<pid_t> tid{0};
  std::thread th([&] {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    phase = 1;
    while (phase.load() != 2) usleep(1000);
  });
  while (phase.load() != 1) usleep(1000);
  fn(tid.load());
  phase = 2;
  th.join();
}

// ------------------------------------------------------------ inode numbers

// A /proc path looked up twice is the same inode (the dentry cache keeps
// it), and different entries are different inodes.
TEST(ProcInodeTest, StableAcrossLookups) {
  const std::string tid = std::to_string(syscall(SYS_gettid));
  for (const std::string& p : {Self("stat"), Self(""), Self("task/" + tid + "/stat"),
                               Self("status"), Self("fd"), Self("task")}) {
    ino_t a = InoOf(p), b = InoOf(p);
    EXPECT_NE(a, 0u) << p;
    EXPECT_EQ(a, b) << p;
  }
  EXPECT_NE(InoOf(Self("stat")), InoOf(Self("status")));
  EXPECT_NE(InoOf(Self("stat")), InoOf(Self("task/" + tid + "/stat")));
}

// ------------------------------------------------------------ personality

TEST(ProcPersonalityTest, FollowsSyscallAndFork) {
  const int orig = personality(0xffffffff);
  ASSERT_GE(orig, 0);
  EXPECT_EQ(ReadFile(Self("personality")), Hex8(orig));
  ASSERT_EQ(personality(orig | ADDR_NO_RANDOMIZE), orig);
  EXPECT_EQ(personality(0xffffffff), orig | ADDR_NO_RANDOMIZE);
  EXPECT_EQ(ReadFile(Self("personality")), Hex8(orig | ADDR_NO_RANDOMIZE));
  // Inherited by a child, and kept across its execve.
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  int status = RunInChild([&] {
    if (personality(0xffffffff) != (orig | ADDR_NO_RANDOMIZE)) return 1;
    close(p[0]);
    if (dup2(p[1], 1) != 1) return 2;
    execl("/bin/cat", "cat", "/proc/self/personality", nullptr);
    return 3;
  });
  close(p[1]);
  char buf[64] = {};
  ssize_t n = read(p[0], buf, sizeof(buf) - 1);
  close(p[0]);
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_EQ(std::string(buf, n > 0 ? n : 0), Hex8(orig | ADDR_NO_RANDOMIZE));
  EXPECT_EQ(personality(orig), orig | ADDR_NO_RANDOMIZE);
  EXPECT_EQ(personality(0xffffffff), orig);
}

// ------------------------------------------------------------ timer slack

TEST(ProcTimerSlackTest, PrctlAndFileAgree) {
  const long orig = prctl(PR_GET_TIMERSLACK);
  ASSERT_GT(orig, 0);
  EXPECT_EQ(ReadFile(Self("timerslack_ns")), std::to_string(orig) + "\n");
  ASSERT_EQ(prctl(PR_SET_TIMERSLACK, 123456), 0);
  EXPECT_EQ(prctl(PR_GET_TIMERSLACK), 123456);
  EXPECT_EQ(ReadFile(Self("timerslack_ns")), "123456\n");
  // A child starts with the value, which is also what 0 restores there.
  int status = RunInChild([] {
    if (prctl(PR_GET_TIMERSLACK) != 123456) return 1;
    if (prctl(PR_SET_TIMERSLACK, 777) != 0 || prctl(PR_GET_TIMERSLACK) != 777) return 2;
    if (prctl(PR_SET_TIMERSLACK, 0) != 0 || prctl(PR_GET_TIMERSLACK) != 123456) return 3;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
  // Written through the file.
  int fd = open(Self("timerslack_ns").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(write(fd, "200000\n", 7), 7);
  close(fd);
  EXPECT_EQ(prctl(PR_GET_TIMERSLACK), 200000);
  fd = open(Self("timerslack_ns").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(write(fd, "abc", 3), -1);
  EXPECT_EQ(errno, EINVAL);
  close(fd);
  // 0 restores the value inherited at creation.
  ASSERT_EQ(prctl(PR_SET_TIMERSLACK, 0), 0);
  EXPECT_EQ(prctl(PR_GET_TIMERSLACK), orig);
}

// Another process's timer slack needs CAP_SYS_NICE, to read as to write.
TEST(ProcTimerSlackTest, OtherProcessNeedsCapSysNice) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  pid_t parent = getpid();
  int status = RunAsNobody([parent] {
    if (!OpenFails(Proc(parent, "timerslack_ns"), EPERM)) return 1;
    // Its own is fine.
    if (ReadFile(Self("timerslack_ns")).find("<error") != std::string::npos) return 2;
    return 0;
  });
  EXPECT_EQ(status, 0);
}

// ------------------------------------------------------------ wchan

TEST(ProcWchanTest, RunningTaskIsZero) { EXPECT_EQ(ReadFile(Self("wchan")), "0"); }

// ------------------------------------------------------------ io

std::map<std::string, uint64_t> Io(const std::string& path) {
  std::map<std::string, uint64_t> out;
  std::istringstream in(ReadFile(path));
  std::string key;
  uint64_t v;
  while (in >> key >> v) out[key.substr(0, key.size() - 1)] = v;
  return out;
}

TEST(ProcIoTest, CountsReadsAndWrites) {
  std::string text = ReadFile(Self("io"));
  std::vector<std::string> keys;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) keys.push_back(line.substr(0, line.find(':')));
  EXPECT_EQ(keys, (std::vector<std::string>{"rchar", "wchar", "syscr", "syscw", "read_bytes",
                                            "write_bytes", "cancelled_write_bytes"}));
  auto before = Io(Self("io"));
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  std::vector<char> buf(10000, 'x');
  ASSERT_EQ(write(p[1], buf.data(), buf.size()), static_cast<ssize_t>(buf.size()));
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t n = read(p[0], buf.data(), buf.size() - got);
    ASSERT_GT(n, 0);
    got += n;
  }
  close(p[0]);
  close(p[1]);
  auto after = Io(Self("io"));
  EXPECT_GE(after["wchar"] - before["wchar"], 10000u);
  EXPECT_GE(after["rchar"] - before["rchar"], 10000u);
  EXPECT_GE(after["syscw"] - before["syscw"], 1u);
  EXPECT_GE(after["syscr"] - before["syscr"], 1u);
  // A call on a bad fd never reaches a file: not counted (vfs_write()
  // counts).
  auto b2 = Io(Self("io"));
  EXPECT_EQ(write(-1, buf.data(), 10), -1);
  EXPECT_EQ(read(-1, buf.data(), 10), -1);
  auto a2 = Io(Self("io"));
  EXPECT_EQ(a2["syscw"], b2["syscw"]);
  EXPECT_EQ(a2["wchar"], b2["wchar"]);
}

// A reaped child's I/O is added to its parent's; a thread's is its own.
TEST(ProcIoTest, ReapedChildrenAndThreads) {
  auto before = Io(Self("io"));
  int status = RunInChild([] {
    int fd = open("/dev/null", O_WRONLY);
    std::vector<char> buf(50000, 'y');
    return write(fd, buf.data(), buf.size()) == 50000 ? 0 : 1;
  });
  EXPECT_EXIT_CODE(status, 0);
  auto after = Io(Self("io"));
  EXPECT_GE(after["wchar"] - before["wchar"], 50000u);

  OnThread([](pid_t tid) {
    auto t = Io(Self("task/" + std::to_string(tid) + "/io"));
    // The thread did no large write; the process did.
    EXPECT_LT(t["wchar"], 50000u);
    EXPECT_GE(Io(Self("io"))["wchar"], 50000u);
  });
}

// ------------------------------------------------------------ schedstat

TEST(ProcSchedstatTest, CountsCpuTime) {
  timespec start, now;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &start);
  volatile uint64_t x = 0;
  do {
    for (int i = 0; i < 100000; ++i) x = x + i;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  } while ((now.tv_sec - start.tv_sec) * 1000000000LL + (now.tv_nsec - start.tv_nsec) <
           200000000LL);
  std::istringstream in(ReadFile(Self("schedstat")));
  uint64_t run = 0, wait = 0, slices = 0;
  ASSERT_TRUE(static_cast<bool>(in >> run >> wait >> slices));
  EXPECT_GE(run, 150000000u);
  EXPECT_GE(slices, 1u);
}

// ------------------------------------------------------------ audit ids

TEST(ProcAuditTest, LoginuidAndSessionid) {
  std::string login = ReadFile(Self("loginuid"));
  std::string session = ReadFile(Self("sessionid"));
  ASSERT_FALSE(login.empty());
  EXPECT_EQ(login.find('\n'), std::string::npos);
  EXPECT_EQ(session.find('\n'), std::string::npos);
  std::stoull(login);
  std::stoull(session);
  if (login != "4294967295" || geteuid() != 0) GTEST_SKIP() << "loginuid already set";
  pid_t parent = getpid();
  int status = RunInChild([parent] {
    // Not another process's.
    int fd = open(Proc(parent, "loginuid").c_str(), O_WRONLY);
    if (fd < 0) return 1;
    if (write(fd, "1000", 4) != -1 || errno != EPERM) return 2;
    close(fd);
    fd = open(Self("loginuid").c_str(), O_WRONLY);
    if (fd < 0) return 3;
    if (write(fd, "1000\n", 5) != 5) return 4;
    close(fd);
    if (ReadFile(Self("loginuid")) != "1000") return 5;
    std::string s = ReadFile(Self("sessionid"));
    if (s == "4294967295" || s.empty()) return 6;
    // A child inherits both.
    std::string mine = s;
    int st = RunInChild([mine] {
      return ReadFile(Self("loginuid")) == "1000" && ReadFile(Self("sessionid")) == mine ? 0 : 1;
    });
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 7;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
  EXPECT_EQ(ReadFile(Self("loginuid")), "4294967295");
}

// ------------------------------------------------------------ stat

// The maps line that holds `addr`.
std::string MapsLineOf(uint64_t addr) {
  std::istringstream in(ReadFile(Self("maps")));
  std::string line;
  while (std::getline(in, line)) {
    unsigned long lo, hi;
    if (sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && addr >= lo && addr < hi) return line;
  }
  return "";
}

size_t SizeOfFile(const std::string& path) {
  std::string s = ReadFile(path);
  return s.size();
}

TEST(ProcStatTest, AddressFields) {
  auto f = StatFields(ReadFile(Self("stat")));
  ASSERT_EQ(f.size(), 52u);
  const uint64_t entry = getauxval(AT_ENTRY);
  EXPECT_LE(StatNum(f, 26), entry);  // startcode
  EXPECT_GT(StatNum(f, 27), entry);  // endcode
  const uint64_t stack = StatNum(f, 28);
  EXPECT_NE(MapsLineOf(stack).find("[stack]"), std::string::npos) << stack;
  const uint64_t arg_start = StatNum(f, 48), arg_end = StatNum(f, 49);
  const uint64_t env_start = StatNum(f, 50), env_end = StatNum(f, 51);
  EXPECT_LT(stack, arg_start);
  EXPECT_EQ(arg_end - arg_start, SizeOfFile(Self("cmdline")));
  EXPECT_EQ(env_end - env_start, SizeOfFile(Self("environ")));
  EXPECT_LE(arg_end, env_start);
  EXPECT_LE(StatNum(f, 45), StatNum(f, 46));  // start_data <= end_data
  EXPECT_GE(StatNum(f, 45), StatNum(f, 27));  // data after code
  const uint64_t brk = reinterpret_cast<uint64_t>(sbrk(0));
  EXPECT_LE(StatNum(f, 47), brk);             // start_brk
  EXPECT_GE(StatNum(f, 47), StatNum(f, 46));
  EXPECT_EQ(StatNum(f, 29), 0u);  // kstkesp
  EXPECT_EQ(StatNum(f, 30), 0u);  // kstkeip
  EXPECT_EQ(StatNum(f, 35), 0u);  // wchan: running
  EXPECT_EQ(StatNum(f, 38), 17u);  // exit_signal
  EXPECT_EQ(StatNum(f, 52), 0u);   // exit_code
  struct rlimit rss;
  ASSERT_EQ(getrlimit(RLIMIT_RSS, &rss), 0);
  EXPECT_EQ(StatNum(f, 25), static_cast<uint64_t>(rss.rlim_cur));
}

// Without a controlling terminal tty_nr is 0 and tpgid -1; nice and
// priority follow setpriority.
TEST(ProcStatTest, TtyAndNice) {
  int status = RunInChild([] {
    if (setsid() < 0) return 1;
    auto f = StatFields(ReadFile(Self("stat")));
    if (StatAt(f, 7) != "0") return 2;
    if (StatAt(f, 8) != "-1") return 3;
    if (StatAt(f, 6) != std::to_string(getpid())) return 4;  // session
    if (setpriority(PRIO_PROCESS, 0, 5) != 0) return 5;
    f = StatFields(ReadFile(Self("stat")));
    if (StatAt(f, 19) != "5" || StatAt(f, 18) != "25") return 6;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// A sleeping child shows wchan 1 and state S; a thread other than the
// leader has no exit signal (-1).
TEST(ProcStatTest, SleepingChildAndThread) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c;
    close(p[1]);
    _exit(read(p[0], &c, 1) == 0 ? 0 : 1);
  }
  close(p[0]);
  std::vector<std::string> f;
  for (int i = 0; i < 500; ++i) {
    f = StatFields(ReadFile(Proc(child, "stat")));
    if (StatAt(f, 3) == "S") break;
    usleep(2000);
  }
  EXPECT_EQ(StatAt(f, 3), "S");
  EXPECT_EQ(StatAt(f, 35), "1");
  close(p[1]);
  int st;
  ASSERT_EQ(waitpid(child, &st, 0), child);
  EXPECT_EXIT_CODE(st, 0);

  OnThread([](pid_t tid) {
    auto t = StatFields(ReadFile(Self("task/" + std::to_string(tid) + "/stat")));
    EXPECT_EQ(StatAt(t, 1), std::to_string(tid));
    EXPECT_EQ(StatAt(t, 38), "-1");
    EXPECT_EQ(StatAt(t, 20), "2");  // num_threads
  });
}

// Another user's process: code bounds show 1, the other addresses 0.
TEST(ProcStatTest, HiddenFromOtherUsers) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  pid_t parent = getpid();
  int status = RunAsNobody([parent] {
    auto f = StatFields(ReadFile(Proc(parent, "stat")));
    if (f.size() != 52) return 1;
    if (StatAt(f, 26) != "1" || StatAt(f, 27) != "1") return 2;
    if (StatAt(f, 28) != "0") return 3;
    for (size_t n = 45; n <= 52; ++n) {
      if (StatAt(f, n) != "0") return 4;
    }
    // Its own are there.
    auto own = StatFields(ReadFile(Self("stat")));
    if (StatNum(own, 26) <= 1 || StatNum(own, 48) == 0) return 5;
    return 0;
  });
  EXPECT_EQ(status, 0);
}

// ------------------------------------------------------------ statm, status

TEST(ProcStatmTest, MatchesStatus) {
  std::istringstream in(ReadFile(Self("statm")));
  uint64_t size, resident, shared, text, lib, data, dt;
  ASSERT_TRUE(static_cast<bool>(in >> size >> resident >> shared >> text >> lib >> data >> dt));
  const std::string status = ReadFile(Self("status"));
  const uint64_t page_kb = sysconf(_SC_PAGESIZE) / 1024;
  EXPECT_EQ(size * page_kb, Kb(status, "VmSize"));
  EXPECT_EQ(text * page_kb, Kb(status, "VmExe"));
  EXPECT_GT(text, 0u);
  EXPECT_EQ(lib, 0u);
  EXPECT_EQ(dt, 0u);
  EXPECT_EQ(data * page_kb, Kb(status, "VmData") + Kb(status, "VmStk"));
  // A private writable mapping counts as data.
  const size_t len = 64 * 4096;
  void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  EXPECT_EQ(Kb(ReadFile(Self("status")), "VmData"), Kb(status, "VmData") + 256);
  munmap(m, len);
}

TEST(ProcStatusTest, LinesInOrder) {
  const std::string status = ReadFile(Self("status"));
  size_t at = 0;
  for (const char* key :
       {"Name", "Umask", "State", "Tgid", "Ngid", "Pid", "PPid", "TracerPid", "Uid", "Gid",
        "FDSize", "Groups", "NStgid", "NSpid", "NSpgid", "NSsid", "VmPeak", "VmSize", "VmLck",
        "VmPin", "VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem", "VmData", "VmStk", "VmExe",
        "VmLib", "VmPTE", "VmSwap", "HugetlbPages", "CoreDumping", "THP_enabled", "Threads",
        "SigQ", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "CapInh", "CapPrm", "CapEff",
        "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp", "Cpus_allowed", "Cpus_allowed_list",
        "Mems_allowed", "Mems_allowed_list", "voluntary_ctxt_switches"}) {
    size_t next = status.find(std::string("\n") + key + ":", at == 0 ? 0 : at - 1);
    if (std::string(key) == "Name") next = status.rfind("Name:", 0) == 0 ? 0 : std::string::npos;
    EXPECT_NE(next, std::string::npos) << key;
    if (next != std::string::npos) at = next + 1;
  }
  EXPECT_EQ(Field(status, "NStgid"), std::to_string(getpid()));
  EXPECT_GE(Kb(status, "VmPeak"), Kb(status, "VmSize"));
  EXPECT_GE(Kb(status, "VmHWM"), Kb(status, "VmRSS"));
  EXPECT_LE(Kb(status, "RssAnon") + Kb(status, "RssFile") + Kb(status, "RssShmem"),
            Kb(status, "VmRSS") + 64);
  // The affinity mask as a list of ranges.
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  std::string list;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    int e = c;
    while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &set)) ++e;
    list += (list.empty() ? "" : ",") + std::to_string(c) + (e > c ? "-" + std::to_string(e) : "");
    c = e;
  }
  EXPECT_EQ(Field(status, "Cpus_allowed_list"), list);
}

// ------------------------------------------------------------ smaps

// The smaps entry of the VMA starting at `start`: its lines.
std::string SmapsEntry(const std::string& smaps, uint64_t start) {
  char head[32];
  snprintf(head, sizeof(head), "%08lx-", static_cast<unsigned long>(start));
  size_t at = smaps.find(std::string("\n") + head);
  if (smaps.rfind(head, 0) == 0) at = 0;
  else if (at != std::string::npos) ++at;
  if (at == std::string::npos) return "";
  size_t end = smaps.find("VmFlags:", at);
  end = smaps.find('\n', end);
  return smaps.substr(at, end - at + 1);
}

TEST(ProcSmapsTest, EntryPerMappingWithItsUse) {
  const size_t page = sysconf(_SC_PAGESIZE);
  char* m = static_cast<char*>(
      mmap(nullptr, 16 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  // Keep it apart from its neighbours.
  ASSERT_EQ(mprotect(m + 15 * page, page, PROT_READ), 0);
  for (int i = 0; i < 10; ++i) m[i * page] = 1;
  const std::string smaps = ReadFile(Self("smaps"));
  const std::string e = SmapsEntry(smaps, reinterpret_cast<uint64_t>(m));
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(Kb(e, "Size"), 15 * page / 1024);
  EXPECT_EQ(Kb(e, "KernelPageSize"), page / 1024);
  EXPECT_GE(Kb(e, "Rss"), 10 * page / 1024);
  EXPECT_LE(Kb(e, "Rss"), 15 * page / 1024);
  EXPECT_GE(Kb(e, "Anonymous"), 10 * page / 1024);
  EXPECT_GE(Kb(e, "Private_Dirty"), 10 * page / 1024);
  EXPECT_EQ(Kb(e, "Swap"), 0u);
  for (const char* key : {"Pss", "Pss_Dirty", "Shared_Clean", "Shared_Dirty", "Private_Clean",
                          "Referenced", "LazyFree", "AnonHugePages", "Locked", "THPeligible"}) {
    EXPECT_NE(Field(e, key), "") << key;
  }
  EXPECT_EQ(Field(e, "VmFlags"), "rd wr mr mw me ac ");
  // The read-only page after it.
  const std::string ro = SmapsEntry(smaps, reinterpret_cast<uint64_t>(m + 15 * page));
  EXPECT_EQ(Field(ro, "VmFlags"), "rd mr mw me ");
  // The stack grows down.
  int local = 0;
  std::string line = MapsLineOf(reinterpret_cast<uint64_t>(&local));
  unsigned long lo = 0;
  sscanf(line.c_str(), "%lx-", &lo);
  EXPECT_NE(Field(SmapsEntry(smaps, lo), "VmFlags").find("gd"), std::string::npos);
  // One entry per maps line, in the same order.
  std::vector<std::string> heads, maps;
  std::istringstream in(smaps);
  std::string l;
  while (std::getline(in, l)) {
    unsigned long a, b;
    if (sscanf(l.c_str(), "%lx-%lx ", &a, &b) == 2) heads.push_back(l);
  }
  std::istringstream min(ReadFile(Self("maps")));
  while (std::getline(min, l)) maps.push_back(l);
  ASSERT_EQ(heads.size(), maps.size());
  for (size_t i = 0; i < heads.size(); ++i) {
    if (maps[i].find("[vsyscall]") != std::string::npos) continue;
    // The start (the heap's end may move between the two reads).
    EXPECT_EQ(heads[i].substr(0, heads[i].find('-')), maps[i].substr(0, maps[i].find('-')));
  }
  munmap(m, 16 * page);
}

TEST(ProcSmapsTest, Rollup) {
  const size_t page = sysconf(_SC_PAGESIZE);
  char* m = static_cast<char*>(
      mmap(nullptr, 64 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(m, MAP_FAILED);
  for (int i = 0; i < 64; ++i) m[i * page] = 1;
  const std::string r = ReadFile(Self("smaps_rollup"));
  ASSERT_NE(r.find("[rollup]\n"), std::string::npos);
  EXPECT_LT(r.find("[rollup]"), r.find('\n'));
  EXPECT_GE(Kb(r, "Rss"), 64 * page / 1024);
  EXPECT_GE(Kb(r, "Anonymous"), 64 * page / 1024);
  EXPECT_GE(Kb(r, "Pss_Anon"), 32 * page / 1024);
  EXPECT_LE(Kb(r, "Pss"), Kb(r, "Rss"));
  EXPECT_LE(Kb(r, "Pss_Anon") + Kb(r, "Pss_File") + Kb(r, "Pss_Shmem"), Kb(r, "Pss") + 4);
  for (const char* key : {"Pss_Dirty", "Shared_Clean", "Private_Dirty", "Referenced", "Swap",
                          "SwapPss", "Locked"}) {
    EXPECT_NE(Field(r, key), "") << key;
  }
  EXPECT_EQ(Field(r, "VmFlags"), "");
  munmap(m, 64 * page);
}

// ------------------------------------------------------------ other users

// What another user may and may not read of a process (root's, here).
TEST(ProcAccessTest, OtherUsersEntries) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  pid_t parent = getpid();
  int status = RunAsNobody([parent] {
    int n = 1;
    for (const char* name : {"environ", "maps", "smaps", "smaps_rollup", "io", "personality",
                             "auxv", "mem"}) {
      if (!OpenFails(Proc(parent, name), EACCES)) return n;
      ++n;
    }
    for (const char* name : {"stat", "status", "statm", "cmdline", "comm", "limits", "wchan",
                             "schedstat", "sessionid", "loginuid", "cgroup", "oom_score"}) {
      if (ReadFile(Proc(parent, name)).rfind("<error", 0) == 0) return 20 + n;
      ++n;
    }
    // Its own it may read (dumpable again: they are its own).
    if (prctl(PR_SET_DUMPABLE, 1) != 0) return 49;
    for (const char* name : {"environ", "maps", "smaps", "io", "personality"}) {
      if (ReadFile(Self(name)).rfind("<error", 0) == 0) return 50;
    }
    return 0;
  });
  EXPECT_EQ(status, 0);
}

// ------------------------------------------------------------ comm, task/

TEST(ProcCommTest, WriteNamesThatThread) {
  char main_name[16] = {};
  ASSERT_EQ(prctl(PR_GET_NAME, main_name), 0);
  OnThread([&](pid_t tid) {
    const std::string path = Self("task/" + std::to_string(tid) + "/comm");
    int fd = open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(write(fd, "worker-abcdefghijklmno", 22), 22);
    close(fd);
    EXPECT_EQ(ReadFile(path), "worker-abcdefgh\n");
    char now[16] = {};
    ASSERT_EQ(prctl(PR_GET_NAME, now), 0);
    EXPECT_STREQ(now, main_name);
  });
  // Another process's comm: EINVAL.
  pid_t parent = getpid();
  int status = RunInChild([parent] {
    int fd = open(Proc(parent, "comm").c_str(), O_WRONLY);
    if (fd < 0) return 1;
    if (write(fd, "x", 1) != -1 || errno != EINVAL) return 2;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// prctl(PR_SET_NAME) keeps 15 bytes; PR_GET_NAME fills 16 with the NUL.
TEST(ProcCommTest, PrctlNameTruncates) {
  char orig[16] = {};
  ASSERT_EQ(prctl(PR_GET_NAME, orig), 0);
  ASSERT_EQ(prctl(PR_SET_NAME, "0123456789abcdefghij"), 0);
  char got[32];
  memset(got, 'Z', sizeof(got));
  ASSERT_EQ(prctl(PR_GET_NAME, got), 0);
  EXPECT_STREQ(got, "0123456789abcde");
  EXPECT_EQ(got[16], 'Z');
  EXPECT_EQ(ReadFile(Self("comm")), "0123456789abcde\n");
  ASSERT_EQ(prctl(PR_SET_NAME, orig), 0);
}

// task/TID/ of a second thread: its own stat, status and entries; /proc/TID
// works but is not listed.
TEST(ProcTaskTest, SecondThreadDirectory) {
  OnThread([](pid_t tid) {
    const std::string dir = Self("task/" + std::to_string(tid) + "/");
    EXPECT_EQ(Field(ReadFile(dir + "status"), "Pid"), std::to_string(tid));
    EXPECT_EQ(Field(ReadFile(dir + "status"), "Tgid"), std::to_string(getpid()));
    for (const char* name : {"stat", "statm", "status", "comm", "maps", "smaps", "io",
                             "schedstat", "personality", "wchan", "limits",
                             "environ", "cmdline", "auxv", "mem", "fd", "fdinfo", "ns", "cgroup",
                             "oom_score_adj", "loginuid", "sessionid"}) {
      struct stat st;
      EXPECT_EQ(stat((dir + name).c_str(), &st), 0) << name;
    }
    // What only the process has (tgid_base_stuff).
    struct stat st;
    EXPECT_EQ(stat((dir + "task").c_str(), &st), -1);
    EXPECT_EQ(stat((dir + "timerslack_ns").c_str(), &st), -1);
    EXPECT_EQ(stat(("/proc/" + std::to_string(tid) + "/stat").c_str(), &st), 0);
    DIR* d = opendir("/proc");
    ASSERT_NE(d, nullptr);
    bool listed = false;
    while (dirent* e = readdir(d)) listed |= std::string(e->d_name) == std::to_string(tid);
    closedir(d);
    EXPECT_FALSE(listed);
  });
}

// ------------------------------------------------------------ prctl

// The mm's flags go with a fork's copy: not dumpable, THP disabled
// (status THP_enabled 0), kept across execve for the latter.
TEST(ProcPrctlTest, MmFlagsInheritedByFork) {
  int status = RunInChild([] {
    if (prctl(PR_SET_DUMPABLE, 0) != 0) return 1;
    if (prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0) return 2;
    if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) != 1) return 3;
    if (Field(ReadFile(Self("status")), "THP_enabled") != "0") return 4;
    int st = RunInChild([] {
      if (prctl(PR_GET_DUMPABLE) != 0) return 1;
      if (prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) != 1) return 2;
      return 0;
    });
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 10 + (WIFEXITED(st) ? WEXITSTATUS(st) : 9);
    if (prctl(PR_SET_THP_DISABLE, 1, 1, 0, 0) != -1 || errno != EINVAL) return 5;
    if (prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0) != 0) return 6;
    if (Field(ReadFile(Self("status")), "THP_enabled") != "1") return 7;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

TEST(ProcPrctlTest, TidAddressTscMce) {
  int* addr = nullptr;
  ASSERT_EQ(prctl(PR_GET_TID_ADDRESS, &addr), 0);
  // glibc registered the thread's tid field with set_tid_address.
  EXPECT_NE(addr, nullptr);
  int* const glibc_slot = addr;
  static int tid_slot = 0;
  syscall(SYS_set_tid_address, &tid_slot);
  ASSERT_EQ(prctl(PR_GET_TID_ADDRESS, &addr), 0);
  EXPECT_EQ(addr, &tid_slot);
  syscall(SYS_set_tid_address, glibc_slot);  // glibc's again
  int v = -1;
  ASSERT_EQ(prctl(PR_GET_TSC, &v), 0);
  EXPECT_EQ(v, PR_TSC_ENABLE);
  EXPECT_EQ(prctl(PR_MCE_KILL_GET, 0, 0, 0, 0), PR_MCE_KILL_DEFAULT);
}

// ------------------------------------------------------------ top level

uint64_t ReadNumber(const std::string& path) {
  std::string s = ReadFile(path);
  return s.empty() || s[0] < '0' || s[0] > '9' ? ~0ull : std::stoull(s);
}

// cap_last_cap is the last capability prctl knows; the pool is full.
TEST(ProcSysTest, KernelFiles) {
  const uint64_t last = ReadNumber("/proc/sys/kernel/cap_last_cap");
  ASSERT_LT(last, 64u);
  EXPECT_GE(prctl(PR_CAPBSET_READ, last), 0);
  EXPECT_EQ(prctl(PR_CAPBSET_READ, last + 1), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(ReadFile("/proc/sys/kernel/random/entropy_avail"), "256\n");
  const uint64_t min_addr = ReadNumber("/proc/sys/vm/mmap_min_addr");
  EXPECT_GT(min_addr, 0u);
  EXPECT_EQ(min_addr % sysconf(_SC_PAGESIZE), 0u);
  EXPECT_GT(ReadNumber("/proc/sys/net/core/somaxconn"), 0u);
}

// max_queued_events is where the queue overflows: that many events, then
// one IN_Q_OVERFLOW.
TEST(ProcSysTest, InotifyMaxQueuedEvents) {
  const uint64_t max = ReadNumber("/proc/sys/fs/inotify/max_queued_events");
  ASSERT_GT(max, 0u);
  ASSERT_LT(max, 1000000u);
  char dir[] = "/tmp/proc_depth_inotifyXXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  int fd = inotify_init1(IN_NONBLOCK);
  ASSERT_GE(fd, 0);
  ASSERT_GT(inotify_add_watch(fd, dir, IN_CREATE | IN_DELETE), 0);
  const std::string f = std::string(dir) + "/f";
  for (uint64_t i = 0; i < max / 2 + 2; ++i) {
    close(open(f.c_str(), O_CREAT | O_WRONLY, 0600));
    unlink(f.c_str());
  }
  static char buf[1 << 20];
  uint64_t events = 0, overflows = 0;
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) {
    for (ssize_t off = 0; off < n;) {
      auto* e = reinterpret_cast<inotify_event*>(buf + off);
      ++events;
      if (e->mask & IN_Q_OVERFLOW) ++overflows;
      off += sizeof(inotify_event) + e->len;
    }
  }
  close(fd);
  rmdir(dir);
  EXPECT_EQ(events, max + 1);
  EXPECT_EQ(overflows, 1u);
}

// The old oom_adj (-17..15) over oom_score_adj.
TEST(ProcOomAdjTest, ScalesToScoreAdj) {
  int status = RunInChild([] {
    auto put = [](const char* name, const char* v) {
      int fd = open(Self(name).c_str(), O_WRONLY);
      if (fd < 0) return false;
      bool ok = write(fd, v, strlen(v)) == static_cast<ssize_t>(strlen(v));
      close(fd);
      return ok;
    };
    if (ReadFile(Self("oom_adj")) != "0\n") return 1;
    if (!put("oom_adj", "5")) return 2;
    if (ReadFile(Self("oom_score_adj")) != "294\n") return 3;
    if (ReadFile(Self("oom_adj")) != "4\n") return 4;
    if (!put("oom_adj", "15")) return 5;
    if (ReadFile(Self("oom_score_adj")) != "1000\n") return 6;
    if (ReadFile(Self("oom_adj")) != "15\n") return 7;
    if (put("oom_adj", "16") || errno != EINVAL) return 8;
    return 0;
  });
  EXPECT_EXIT_CODE(status, 0);
}

// ------------------------------------------------------------ offsets

TEST(ProcOffsetTest, PreadAndSeek) {
  for (const char* name : {"status", "stat", "smaps", "maps", "limits"}) {
    const std::string path = Self(name);
    int fd = open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << name;
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof(buf));
    ASSERT_GT(n, 40) << name;
    const std::string whole(buf, n);
    char part[16];
    ASSERT_EQ(pread(fd, part, sizeof(part), 10), static_cast<ssize_t>(sizeof(part))) << name;
    EXPECT_EQ(std::string(part, sizeof(part)), whole.substr(10, sizeof(part))) << name;
    ASSERT_EQ(lseek(fd, 5, SEEK_SET), 5);
    ASSERT_EQ(read(fd, part, 8), 8);
    EXPECT_EQ(std::string(part, 8), whole.substr(5, 8)) << name;
    ASSERT_EQ(lseek(fd, 3, SEEK_CUR), 16);
    ASSERT_EQ(read(fd, part, 8), 8);
    EXPECT_EQ(std::string(part, 8), whole.substr(16, 8)) << name;
    close(fd);
  }
}

}  // namespace
}  // namespace syscall_test
