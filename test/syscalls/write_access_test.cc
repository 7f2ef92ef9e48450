// ETXTBSY (Linux's i_writecount, get_write_access()/deny_write_access()):
// a regular file that a process runs is not opened for writing or
// truncated, and a file open for writing (through any description, a
// writable shared mapping included) is not executed. The runner is a copy
// of this binary: as a runner (kRoleEnv set) it tells fd 1 that its exec is
// done and waits for the end of fd 0 before anything of gtest runs.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

constexpr char kRoleEnv[] = "SV_WRITE_ACCESS_ROLE";
constexpr char kNextEnv[] = "SV_WRITE_ACCESS_NEXT";

// The runner, before main(): "wait" writes its pid to fd 1 and waits until
// fd 0 ends; "fork" leaves that to a child of its own and exits; "reexec"
// executes kNextEnv's file as a "wait" runner.
[[maybe_unused]] const bool kRunner = [] {
  const char* role = getenv(kRoleEnv);
  if (role == nullptr) return false;
  if (strcmp(role, "fork") == 0) {
    const pid_t p = fork();
    if (p < 0) _exit(3);
    if (p > 0) _exit(0);
  } else if (strcmp(role, "reexec") == 0) {
    const char* next = getenv(kNextEnv);
    if (next == nullptr || setenv(kRoleEnv, "wait", 1) != 0) _exit(4);
    execl(next, next, static_cast<char*>(nullptr));
    _exit(5);
  }
  const pid_t self = getpid();
  if (write(1, &self, sizeof(self)) != sizeof(self)) _exit(6);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  _exit(0);
}();

// A running runner: `path` executed with `role`; its process (the one that
// waits: a "fork" runner's child) ends once Release() or the destructor
// closes its fd 0.
class Runner {
 public:
  Runner(const std::string& path, const std::string& role, const std::string& next = "") {
    int hold[2], ready[2];
    if (pipe2(hold, O_CLOEXEC) != 0 || pipe2(ready, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << ErrnoName(errno);
      return;
    }
    pid_ = fork();
    if (pid_ == 0) {
      if (dup2(hold[0], 0) < 0 || dup2(ready[1], 1) < 0) _exit(7);
      setenv(kRoleEnv, role.c_str(), 1);
      if (!next.empty()) setenv(kNextEnv, next.c_str(), 1);
      execl(path.c_str(), path.c_str(), static_cast<char*>(nullptr));
      _exit(errno == ETXTBSY ? 8 : 9);
    }
    close(hold[0]);
    close(ready[1]);
    hold_ = FileDescriptor(hold[1]);
    FileDescriptor ready_fd(ready[0]);
    if (pid_ < 0) {
      ADD_FAILURE() << "fork: " << ErrnoName(errno);
      return;
    }
    if (read(ready_fd.get(), &waiter_, sizeof(waiter_)) != sizeof(waiter_)) {
      ADD_FAILURE() << "the runner never started";
      waiter_ = -1;
    }
    ready_ = std::move(ready_fd);
  }
  ~Runner() {
    Release();
    Reap();
  }
  // Lets the waiting process end, and returns once it has (its fd 1, the
  // ready pipe, reaches its end as it exits: exit_files() after exit_mm()).
  void Release() {
    hold_.reset();
    char c;
    while (ready_.get() >= 0 && read(ready_.get(), &c, 1) > 0) {
    }
    ready_.reset();
  }
  // Reaps the runners (a "fork" runner's child was given to us: we are
  // its subreaper).
  void Reap() {
    for (pid_t p : {pid_, waiter_}) {
      if (p > 0) waitpid(p, nullptr, 0);
    }
    pid_ = waiter_ = -1;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  pid_t waiter_ = -1;
  FileDescriptor hold_;
  FileDescriptor ready_;
};

class WriteAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ArmHangGuard(60);
    const std::string self = ReadFile(SelfExe());
    ASSERT_FALSE(self.empty());
    ASSERT_NE(self.rfind("<error", 0), 0u) << self.substr(0, 100);
    exe_ = dir_.Path("runner");
    ASSERT_TRUE(WriteFile(exe_, self, 0755)) << ErrnoName(errno);
  }
  void TearDown() override { DisarmHangGuard(); }

  // Whether `path` may be opened with `flags` (its errno if not).
  static int OpenErrno(const std::string& path, int flags) {
    int fd = open(path.c_str(), flags, 0755);
    if (fd < 0) return errno;
    close(fd);
    return 0;
  }

  // execve(2) of `path` in a child that tells how it went: 0 (it ran as a
  // "wait" runner with nothing to wait for), else the errno.
  static int ExecErrno(const std::string& path) {
    pid_t pid = fork();
    if (pid == 0) {
      int null = open("/dev/null", O_RDWR);
      if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0) _exit(7);
      setenv(kRoleEnv, "wait", 1);
      execl(path.c_str(), path.c_str(), static_cast<char*>(nullptr));
      _exit(errno == ETXTBSY ? 8 : 9);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    if (!WIFEXITED(status)) return -2;
    switch (WEXITSTATUS(status)) {
      case 0:
        return 0;
      case 8:
        return ETXTBSY;
      default:
        return -3;
    }
  }

  TempDir dir_;
  std::string exe_;
};

TEST_F(WriteAccessTest, ARunningExecutableIsNotOpenedForWriting) {
  const std::string content = ReadFile(exe_);
  Runner r(exe_, "wait");
  EXPECT_EQ(OpenErrno(exe_, O_WRONLY), ETXTBSY);
  EXPECT_EQ(OpenErrno(exe_, O_RDWR), ETXTBSY);
  EXPECT_EQ(OpenErrno(exe_, O_WRONLY | O_TRUNC), ETXTBSY);
  EXPECT_EQ(OpenErrno(exe_, O_RDWR | O_CREAT), ETXTBSY);
  EXPECT_ERRNO(ETXTBSY, creat(exe_.c_str(), 0755));
  EXPECT_ERRNO(ETXTBSY, truncate(exe_.c_str(), 0));
  // Nothing was truncated.
  struct stat st;
  ASSERT_OK(stat(exe_.c_str(), &st));
  EXPECT_EQ(static_cast<size_t>(st.st_size), content.size());
  // Reading, O_PATH and access mode 3 (ioctls only) write nothing.
  EXPECT_EQ(OpenErrno(exe_, O_RDONLY), 0);
  EXPECT_EQ(OpenErrno(exe_, O_PATH), 0);
  EXPECT_EQ(OpenErrno(exe_, O_ACCMODE), 0);
  // The file, by whatever name: a hard link, a reopen of an O_PATH fd.
  const std::string link_name = dir_.Path("link");
  ASSERT_OK(link(exe_.c_str(), link_name.c_str()));
  EXPECT_EQ(OpenErrno(link_name, O_WRONLY), ETXTBSY);
  FileDescriptor path_fd(open(exe_.c_str(), O_PATH));
  ASSERT_OK(path_fd.get());
  EXPECT_EQ(OpenErrno("/proc/self/fd/" + std::to_string(path_fd.get()), O_WRONLY), ETXTBSY);
  // Another file is no such file.
  EXPECT_EQ(OpenErrno(dir_.Path("other"), O_WRONLY | O_CREAT), 0);

  // Once the process has exited (its address space went at exit_mm(),
  // before it is reaped), the file is writable again.
  r.Release();
  siginfo_t info{};
  ASSERT_OK(waitid(P_PID, r.pid(), &info, WEXITED | WNOWAIT));
  EXPECT_EQ(OpenErrno(exe_, O_WRONLY), 0);
  EXPECT_OK(truncate(exe_.c_str(), content.size()));
}

TEST_F(WriteAccessTest, TwoRunnersBothHoldTheFile) {
  Runner first(exe_, "wait");
  Runner second(exe_, "wait");
  first.Release();
  first.Reap();
  EXPECT_EQ(OpenErrno(exe_, O_WRONLY), ETXTBSY);
  second.Release();
  second.Reap();
  EXPECT_EQ(OpenErrno(exe_, O_WRONLY), 0);
}

TEST_F(WriteAccessTest, AFileOpenForWritingIsNotExecuted) {
  {
    FileDescriptor w(open(exe_.c_str(), O_WRONLY));
    ASSERT_OK(w.get());
    EXPECT_EQ(ExecErrno(exe_), ETXTBSY);
    // The file is not denied to writers by the refused exec.
    EXPECT_EQ(OpenErrno(exe_, O_RDWR), 0);
  }
  EXPECT_EQ(ExecErrno(exe_), 0);
  // A reader does not keep it from running.
  FileDescriptor r(open(exe_.c_str(), O_RDONLY));
  ASSERT_OK(r.get());
  EXPECT_EQ(ExecErrno(exe_), 0);
}

TEST_F(WriteAccessTest, AWritableSharedMappingKeepsTheFileOpenForWriting) {
  void* m;
  {
    FileDescriptor w(open(exe_.c_str(), O_RDWR));
    ASSERT_OK(w.get());
    m = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, w.get(), 0);
    ASSERT_NE(m, MAP_FAILED) << ErrnoName(errno);
  }
  EXPECT_EQ(ExecErrno(exe_), ETXTBSY);  // the mapping holds the open file
  ASSERT_OK(munmap(m, 4096));
  EXPECT_EQ(ExecErrno(exe_), 0);
}

TEST_F(WriteAccessTest, AForkOfTheRunnerKeepsTheFileBusy) {
  // The runner forks and exits: the fork's address space runs the file
  // still (dup_mm() takes mm->exe_file along).
  ASSERT_OK(prctl(PR_SET_CHILD_SUBREAPER, 1));
  {
    Runner r(exe_, "fork");
    int status = 0;
    ASSERT_EQ(waitpid(r.pid(), &status, 0), r.pid());
    EXPECT_EXIT_CODE(status, 0);
    EXPECT_EQ(OpenErrno(exe_, O_WRONLY), ETXTBSY);
    r.Release();
    r.Reap();
    EXPECT_EQ(OpenErrno(exe_, O_WRONLY), 0);
  }
  ASSERT_OK(prctl(PR_SET_CHILD_SUBREAPER, 0));
}

TEST_F(WriteAccessTest, AnExecOfAnotherFileLetsTheFileGo) {
  // The runner executes the original binary: the copy is writable again
  // while the same process lives on.
  Runner r(exe_, "reexec", SelfExe());
  EXPECT_EQ(OpenErrno(exe_, O_WRONLY), 0);
  EXPECT_EQ(kill(r.pid(), 0), 0);
}

TEST_F(WriteAccessTest, AScriptIsWritableItsInterpreterIsNot) {
  const std::string script = dir_.Path("script");
  ASSERT_TRUE(WriteFile(script, "#!" + exe_ + "\n", 0755)) << ErrnoName(errno);
  Runner r(script, "wait");
  EXPECT_EQ(OpenErrno(script, O_WRONLY), 0);
  EXPECT_EQ(OpenErrno(exe_, O_WRONLY), ETXTBSY);
  r.Release();
  r.Reap();
  // But while the exec loads it, the script is denied to writers too: one
  // open for writing is not executed.
  FileDescriptor w(open(script.c_str(), O_WRONLY));
  ASSERT_OK(w.get());
  EXPECT_EQ(ExecErrno(script), ETXTBSY);
}

}  // namespace
}  // namespace syscall_test
