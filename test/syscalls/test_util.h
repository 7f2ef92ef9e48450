// Helpers shared by the syscall conformance tests: errno assertions, a
// scratch directory, and running code in a forked child.
//
//   TempDir dir;                       // removed (recursively) at scope end
//   std::string p = dir.Path("f");
//   EXPECT_ERRNO(ENOENT, open("/nonexistent", O_RDONLY));
//   int status = RunInChild([] { raise(SIGTERM); return 0; });
//   EXPECT_TRUE(WIFSIGNALED(status));
//
// The tests run both natively and inside the sandbox, so they rely only on
// what both provide: a writable $TEST_TMPDIR (or /tmp), running as any uid.
#ifndef SEEDVISOR_TEST_SYSCALLS_TEST_UTIL_H_
#define SEEDVISOR_TEST_SYSCALLS_TEST_UTIL_H_

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace syscall_test {

// "ENOENT" for ENOENT; the number for errnos it does not know.
std::string ErrnoName(int err);

// CLOCK_MONOTONIC in milliseconds.
inline int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

// Expects `expr` to return -1 and set errno to `err` (exactly: EPERM is not
// EACCES).
#define EXPECT_ERRNO(err, expr)                                        \
  do {                                                                 \
    errno = 0;                                                         \
    long _syscall_test_ret = static_cast<long>(expr);                  \
    int _syscall_test_errno = errno;                                   \
    EXPECT_EQ(_syscall_test_ret, -1L) << #expr;                        \
    EXPECT_EQ(_syscall_test_errno, (err))                              \
        << #expr << ": errno "                                         \
        << ::syscall_test::ErrnoName(_syscall_test_errno) << ", want " \
        << ::syscall_test::ErrnoName(err);                             \
  } while (0)

#define ASSERT_ERRNO(err, expr)                                        \
  do {                                                                 \
    errno = 0;                                                         \
    long _syscall_test_ret = static_cast<long>(expr);                  \
    int _syscall_test_errno = errno;                                   \
    ASSERT_EQ(_syscall_test_ret, -1L) << #expr;                        \
    ASSERT_EQ(_syscall_test_errno, (err))                              \
        << #expr << ": errno "                                         \
        << ::syscall_test::ErrnoName(_syscall_test_errno) << ", want " \
        << ::syscall_test::ErrnoName(err);                             \
  } while (0)

// Expects `expr` to succeed (return anything but -1), else prints errno.
#define EXPECT_OK(expr)                                       \
  do {                                                        \
    errno = 0;                                                \
    long _syscall_test_ret = static_cast<long>(expr);         \
    EXPECT_NE(_syscall_test_ret, -1L)                         \
        << #expr << ": " << ::syscall_test::ErrnoName(errno); \
  } while (0)

#define ASSERT_OK(expr)                                       \
  do {                                                        \
    errno = 0;                                                \
    long _syscall_test_ret = static_cast<long>(expr);         \
    ASSERT_NE(_syscall_test_ret, -1L)                         \
        << #expr << ": " << ::syscall_test::ErrnoName(errno); \
  } while (0)

// Expects a wait status to say "exited with `code`".
#define EXPECT_EXIT_CODE(status, code)                  \
  do {                                                  \
    int _syscall_test_st = (status);                    \
    EXPECT_TRUE(WIFEXITED(_syscall_test_st))            \
        << "wait status " << _syscall_test_st;          \
    if (WIFEXITED(_syscall_test_st)) {                  \
      EXPECT_EQ(WEXITSTATUS(_syscall_test_st), (code)); \
    }                                                   \
  } while (0)

// A fresh directory under $TEST_TMPDIR (or /tmp), removed with everything in
// it when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name.
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Creates `path` with `contents`; returns false (errno set) on failure.
bool WriteFile(const std::string& path, const std::string& contents,
               mode_t mode = 0644);
// The contents of `path`, or "<error: ...>".
std::string ReadFile(const std::string& path);
// The whitespace-separated fields of the first line of `path` whose field
// `key_field` is `key` (a /proc table's row: /proc/sysvipc/shm's by id);
// empty if none.
std::vector<std::string> LineWith(const std::string& path, int key_field,
                                  const std::string& key);

// An fd that closes itself.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() { reset(); }
  FileDescriptor(FileDescriptor&& o) : fd_(o.release()) {}
  FileDescriptor& operator=(FileDescriptor&& o) {
    reset(o.release());
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Forks; the child runs `fn` and _exit()s with its result (gtest assertions
// do not work in the child: return a distinct code per failure instead).
// Returns the child's wait status, or -1 if fork/waitpid failed.
int RunInChild(const std::function<int()>& fn);

// RunInChild as nobody (uid and gid 65534, no supplementary groups, hence
// no capabilities): `fn`'s result, 100 if the switch failed, 200 + N if
// the child died of signal N.
int RunAsNobody(const std::function<int()>& fn);

// Whether `cap` is in the effective capability set.
bool HaveCap(int cap);
// Drops `cap` from the effective set (it stays permitted); true if it is
// gone.
bool DropEffective(int cap);

// The path of the running test binary, for re-executing it.
std::string SelfExe();

// In the sandbox, whether the host's kernel is older than major.minor (for
// a case only a newer host lets the sandbox pass). The sandbox's uname(2)
// is its own, so run_test.sh passes the host's in SEEDVISOR_HOST_RELEASE;
// natively (it is unset) false: the host's kernel is the one under test.
bool SandboxHostBefore(int major, int minor);

// A case that hangs ends the binary after `seconds` with a message. The
// signal is handled, not left at SIG_DFL: in the sandbox the test is the
// init of its pid namespace, which never gets a signal it does not handle
// (SIGNAL_UNKILLABLE, sig_task_ignored()), so a default SIGALRM would be
// dropped and the case would hang until Bazel's timeout.
inline void ArmHangGuard(unsigned seconds) {
  struct sigaction sa {};
  sa.sa_handler = [](int) {
    static const char kMsg[] = "hang guard: the case did not finish in time\n";
    (void)!write(2, kMsg, sizeof(kMsg) - 1);
    _exit(3);
  };
  sigaction(SIGALRM, &sa, nullptr);
  alarm(seconds);
}

inline void DisarmHangGuard() { alarm(0); }

// Threads that read files of /proc/PID over and over, PID being the
// process last named to Watch (none while it is 0), for a test that races
// a process's exit against readers of its /proc files. One thread per
// list; a name ending in '/' is a directory, listed (getdents64); one
// under "ns/" a link, read with readlink (an open would hold the
// namespace); any other a file, read to its end. No gtest assertion: a
// forked child may use it. Stopped and joined when it goes.
//
//   ProcReaders readers({{"fd/", "fdinfo/"}, {"fdinfo/2"}});
//   readers.Watch(child);
//   readers.AwaitRounds(2);  // they are at it
//   ... let the child exit; check what its exit undid ...
//   readers.Watch(0);
class ProcReaders {
 public:
  explicit ProcReaders(const std::vector<std::vector<std::string>>& lists);
  ~ProcReaders();
  ProcReaders(const ProcReaders&) = delete;
  ProcReaders& operator=(const ProcReaders&) = delete;

  void Watch(pid_t pid) { pid_.store(pid); }
  // Returns once the threads together have read `n` more rounds of their
  // lists since the call.
  void AwaitRounds(long n) const;

 private:
  void Read(const std::vector<std::string>& names);

  std::atomic<pid_t> pid_{0};
  std::atomic<long> rounds_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace syscall_test

#endif  // SEEDVISOR_TEST_SYSCALLS_TEST_UTIL_H_
