#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runsc/container/test_files.h"
#include "test/util/temp_dir.h"
#include "runsc/container/hooks.h"
#include "runsc/container/host_process.h"
#include "runsc/container/leftover.h"
#include "runsc/container/pod_pid_ns.h"
#include "runsc/container/sandbox.h"
#include "runsc/container/state.h"

namespace seedvisor::container {
namespace {

using testing_files::Slurp;

TEST(StateTest, Ids) {
  EXPECT_TRUE(ValidateId("abc-1.2_x").ok());
  EXPECT_FALSE(ValidateId("").ok());
  EXPECT_FALSE(ValidateId("..").ok());
  EXPECT_FALSE(ValidateId("a/b").ok());
  EXPECT_FALSE(ValidateId("a b").ok());
}

TEST(StateTest, SaveLoadListRemove) {
  const testutil::ScopedTempDir tmp("container_test");
  std::string root = tmp.path() + "/root";
  ASSERT_TRUE(Lock::CreateDir(root, "c1").ok());
  State st;
  st.id = "c1";
  st.bundle = "/b";
  st.set_sandbox({.pid = 42, .start_time = 1234567, .boot_id = "b-1"});
  st.annotations["k"] = "v";
  st.control_address = "/x.sock";
  ASSERT_TRUE(SaveState(root, st).ok());
  absl::Status again = Lock::CreateDir(root, "c1").status();
  EXPECT_TRUE(absl::IsAlreadyExists(again));
  EXPECT_EQ(again.message(), "container with id \"c1\" already exists");
  auto got = LoadState(root, "c1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->bundle, "/b");
  EXPECT_EQ(got->sandbox_pid, 42);
  EXPECT_EQ(got->sandbox_start_time, 1234567u);
  EXPECT_EQ(got->sandbox_boot_id, "b-1");
  EXPECT_EQ(got->annotations.at("k"), "v");
  EXPECT_EQ(got->control_address, "/x.sock");
  EXPECT_EQ(ListIds(root), std::vector<std::string>{"c1"});
  {
    auto lock = Lock::Acquire(root, "c1");
    EXPECT_TRUE(lock.ok());
  }
  ASSERT_TRUE(RemoveStateDir(root, "c1").ok());
  EXPECT_TRUE(ListIds(root).empty());
  auto gone = LoadState(root, "c1");
  EXPECT_TRUE(absl::IsNotFound(gone.status()));
  EXPECT_EQ(gone.status().message(), "container \"c1\" does not exist");
}

TEST(StateTest, OciStateJson) {
  State st;
  st.id = "c";
  st.bundle = "/b";
  st.sandbox_pid = 7;
  EXPECT_EQ(OciStateJson(st, "running", -1),
            R"({"bundle":"/b","id":"c","ociVersion":"1.0.2","pid":7,"status":"running"})");
  EXPECT_EQ(OciStateJson(st, "stopped", -1),
            R"({"bundle":"/b","id":"c","ociVersion":"1.0.2","pid":0,"status":"stopped"})");
}

// A state.json from before seedsc recorded who the sandbox process is
// loads with an unknown identity (start time 0), which host_process.h
// takes for a seedsc sandbox only.
TEST(StateTest, OldStateHasNoIdentity) {
  const testutil::ScopedTempDir tmp("container_test");
  std::string root = tmp.path() + "/root";
  ASSERT_TRUE(Lock::CreateDir(root, "old").ok());
  testing_files::Put(root + "/old/state.json",
                     R"({"id": "old", "bundle": "/b", "sandboxPid": )" +
                         std::to_string(getpid()) + "}");
  auto got = LoadState(root, "old");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->sandbox_pid, getpid());
  EXPECT_EQ(got->sandbox_start_time, 0u);
  EXPECT_EQ(got->sandbox_boot_id, "");
  EXPECT_FALSE(SandboxAlive(*got));  // this test is no seedsc sandbox
}

TEST(StateTest, SandboxAlive) {
  State st;
  st.set_sandbox(*IdentityOf(getpid()));
  EXPECT_TRUE(SandboxAlive(st));
  st.sandbox_start_time += 1;  // another process that got the pid
  EXPECT_FALSE(SandboxAlive(st));
  st.set_sandbox({});
  EXPECT_FALSE(SandboxAlive(st));
  st.set_sandbox({.pid = (1 << 22) + 1, .start_time = 1, .boot_id = ""});
  EXPECT_FALSE(SandboxAlive(st));
}

// A container outside its sandbox's pid namespace is known by the host
// id of the sandbox's thread that names it; without one its create fails
// instead of reporting the sandbox's pid (a TARGET container aimed at it
// would quietly share the sandbox's namespace). Here this process plays
// the sandbox and one of its threads the container's.
TEST(PodPidNamespaceTest, ContainerHostIdIsTheThreadsOrAnError) {
  std::atomic<pid_t> tid{0};
  std::atomic<bool> done{false};
  std::thread t([&] {
    tid = gettid();
    while (!done) usleep(1000);
  });
  while (tid == 0) usleep(1000);
  const pid_t sandbox = getpid();
  PidNamespaceChoice shared, own, of;
  own.own = true;
  of.of = "target";
  // The sandbox's namespace: the sandbox's pid, whatever the thread.
  EXPECT_EQ(ContainerHostId(shared, sandbox, 0).value_or(-1), 0);
  EXPECT_EQ(ContainerHostId(own, sandbox, tid).value_or(-1), tid);
  EXPECT_EQ(ContainerHostId(of, sandbox, tid).value_or(-1), tid);
  for (const PidNamespaceChoice& ns : {own, of}) {
    for (pid_t given : {0, 0x3ffffff0}) {  // none; no thread of the sandbox
      absl::StatusOr<pid_t> id = ContainerHostId(ns, sandbox, given);
      EXPECT_EQ(id.status().code(), absl::StatusCode::kInternal) << given;
      EXPECT_NE(id.status().message().find("no host id of its own"), std::string::npos)
          << id.status();
    }
  }
  done = true;
  t.join();
}

// A child listening on unix socket `path`, blocked reading a pipe (the
// write end is returned in *wr), with the command line `argv0 -c SCRIPT
// extra` (a seedsc sandbox's when argv0 is "seedsc" and extra "boot").
// Returns once the child has exec'd: the script writes a byte to fd 3 (a
// ready pipe) before it blocks, so its command line is argv0's by then.
// -1 if it never got there (the ready pipe closed without a byte).
pid_t Listener(const std::string& path, const char* argv0, const char* extra, int* wr) {
  int p[2];
  int ready[2];
  EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(ready, O_CLOEXEC), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    const int l = socket(AF_UNIX, SOCK_STREAM, 0);  // the exec'd sh keeps it
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
    if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(l, 4) != 0) _exit(1);
    dup2(p[0], 0);
    dup2(ready[1], 3);
    execl("/bin/sh", argv0, "-c", "echo >&3; read x", extra, nullptr);
    _exit(127);
  }
  close(p[0]);
  close(ready[1]);
  *wr = p[1];
  char c = 0;
  ssize_t n;
  while ((n = read(ready[0], &c, 1)) < 0 && errno == EINTR) {
  }
  close(ready[0]);
  if (n != 1) {
    close(p[1]);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

// What a create or fork killed before it recorded its container leaves
// (issue 9): a state dir without state.json and a control socket, maybe a
// sandbox serving it. RemoveLeftover removes them.
TEST(LeftoverTest, RemovesTheDirTheSocketAndTheSandboxServingIt) {
  const testutil::ScopedTempDir tmp("container_test");
  const std::string root = tmp.path() + "/root";
  ASSERT_TRUE(Lock::CreateDir(root, "gone").ok());
  int wr = -1;
  const pid_t sandbox = Listener(ControlAddressFor(StateDir(root, "gone")), "seedsc", "boot", &wr);
  ASSERT_GT(sandbox, 0);
  absl::Status again = Lock::CreateDir(root, "gone").status();
  EXPECT_NE(again.message().find("`seedsc delete --force gone` removes it"), std::string::npos)
      << again;
  // A running sandbox goes only with delete --force.
  absl::Status unforced = RemoveLeftover(root, "gone", false);
  EXPECT_TRUE(absl::IsFailedPrecondition(unforced)) << unforced;
  EXPECT_NE(unforced.message().find("use --force"), std::string::npos) << unforced;
  EXPECT_EQ(access(StateDir(root, "gone").c_str(), F_OK), 0);
  EXPECT_EQ(kill(sandbox, 0), 0);
  ASSERT_TRUE(RemoveLeftover(root, "gone", true).ok());
  int ws = 0;
  ASSERT_EQ(waitpid(sandbox, &ws, 0), sandbox);
  EXPECT_TRUE(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL) << ws;
  EXPECT_NE(access(StateDir(root, "gone").c_str(), F_OK), 0);
  EXPECT_TRUE(absl::IsNotFound(RemoveLeftover(root, "gone", true)));
  close(wr);
}

// A control socket outside the dir (a dir too deep for sun_path) goes too;
// a process serving it that is no seedsc sandbox is left alone.
TEST(LeftoverTest, ASocketUnderTmpGoesAndOnlyASandboxIsKilled) {
  const testutil::ScopedTempDir tmp("container_test");
  const std::string root = tmp.path() + "/" + std::string(100, 'r');
  const std::string id = "long";
  ASSERT_TRUE(Lock::CreateDir(root, id).ok());
  const std::string sock = ControlAddressFor(StateDir(root, id));
  ASSERT_EQ(sock.rfind("/tmp/seedsc-", 0), 0u) << sock;
  int wr = -1;
  const pid_t other = Listener(sock, "sh", "other", &wr);
  ASSERT_GT(other, 0);
  ASSERT_TRUE(RemoveLeftover(root, id, true).ok());
  EXPECT_NE(access(sock.c_str(), F_OK), 0) << sock;
  EXPECT_NE(access(StateDir(root, id).c_str(), F_OK), 0);
  int ws = 0;
  EXPECT_EQ(waitpid(other, &ws, WNOHANG), 0) << "a process that is no sandbox was killed";
  kill(other, SIGKILL);
  waitpid(other, nullptr, 0);
  close(wr);
}

// A seedsc sandbox that was running before the dir was made is no
// leftover's (its pid came from a socket whose listener may be another):
// it is left alone, the dir and the socket go.
TEST(LeftoverTest, ASandboxOlderThanTheDirIsLeftAlone) {
  const testutil::ScopedTempDir tmp("container_test");
  const std::string root = tmp.path() + "/" + std::string(100, 'o');
  const std::string id = "older";
  const std::string sock = ControlAddressFor(StateDir(root, id));
  ASSERT_EQ(sock.rfind("/tmp/seedsc-", 0), 0u) << sock;
  int wr = -1;
  const pid_t older = Listener(sock, "seedsc", "boot", &wr);
  ASSERT_GT(older, 0);
  // Its start time is kept to a clock tick: the dir comes 100 ms later.
  const absl::Time started = StartedAt(*IdentityOf(older));
  while (absl::Now() < started + absl::Milliseconds(100)) usleep(10 * 1000);
  ASSERT_TRUE(Lock::CreateDir(root, id).ok());
  ASSERT_TRUE(RemoveLeftover(root, id, true).ok());
  EXPECT_NE(access(StateDir(root, id).c_str(), F_OK), 0);
  EXPECT_EQ(waitpid(older, nullptr, WNOHANG), 0) << "a sandbox older than the dir was killed";
  kill(older, SIGKILL);
  waitpid(older, nullptr, 0);
  close(wr);
}

// Not a leftover: a container with a state, or one a seedsc is making.
TEST(LeftoverTest, LeavesARecordedOrLockedContainer) {
  const testutil::ScopedTempDir tmp("container_test");
  const std::string root = tmp.path() + "/root";
  ASSERT_TRUE(Lock::CreateDir(root, "made").ok());
  State st;
  st.id = "made";
  ASSERT_TRUE(SaveState(root, st).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(RemoveLeftover(root, "made", true)));
  ASSERT_TRUE(Lock::CreateDir(root, "making").ok());
  {
    auto lock = Lock::Acquire(root, "making");
    ASSERT_TRUE(lock.ok());
    absl::Status s = RemoveLeftover(root, "making", true);
    EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
    EXPECT_EQ(s.message(), "container \"making\" is being made by another seedsc");
  }
  EXPECT_TRUE(RemoveLeftover(root, "making", true).ok());
  EXPECT_TRUE(LoadState(root, "made").ok());
  EXPECT_TRUE(absl::IsNotFound(RemoveLeftover(root, "never", true)));
}

// The names in `dir`, sorted.
std::vector<std::string> Names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    names.push_back(e.path().filename());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// A delete of NEW_ID while a create or fork makes its dir never finds it
// unlocked and takes it for a leftover (issue 9: before, the dir was made
// under its id and only then locked, and a delete in between removed it).
// A temporary dir taken for a leftover before it was locked is made again.
TEST(LeftoverTest, ADirBeingMadeIsNeverALeftover) {
  const testutil::ScopedTempDir tmp("container_test");
  const std::string root = tmp.path() + "/root";
  int made = 0;
  SetCreateDirHookForTest([&](const std::string& name) {
    ++made;
    // Where the dir was still unlocked: a delete of the id finds nothing.
    absl::Status s = RemoveLeftover(root, "new", true);
    EXPECT_TRUE(absl::IsNotFound(s)) << s;
    if (made == 1) {
      EXPECT_TRUE(RemoveLeftover(root, name, true).ok()) << name;
    }
  });
  absl::StatusOr<Lock> lock = Lock::CreateDir(root, "new");
  SetCreateDirHookForTest(nullptr);
  ASSERT_TRUE(lock.ok()) << lock.status();
  EXPECT_EQ(made, 2);
  absl::Status s = RemoveLeftover(root, "new", true);
  EXPECT_EQ(s.message(), "container \"new\" is being made by another seedsc") << s;
  EXPECT_EQ(Names(root), std::vector<std::string>{"new"});
  struct stat sb;
  ASSERT_EQ(stat(StateDir(root, "new").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0711u);
  // Its id taken: the usual error, and no temporary dir stays.
  absl::Status again = Lock::CreateDir(root, "new").status();
  EXPECT_TRUE(absl::IsAlreadyExists(again)) << again;
  EXPECT_EQ(Names(root), std::vector<std::string>{"new"});
}

// On a file system without RENAME_NOREPLACE (older overlayfs, FUSE:
// renameat2 fails with EINVAL) CreateDir renames after a check, both under
// a lock of <root>. A second create of the id that comes between the
// first's check and rename waits for that rename and then finds the id
// taken; the dir made is locked, as with RENAME_NOREPLACE. (Without the
// lock the second found no dir, renamed its own into place, and the
// first's rename replaced it, empty: both creates succeeded.)
TEST(CreateDirTest, WithoutRenameNoReplaceASecondCreateOfTheIdFails) {
  const testutil::ScopedTempDir tmp("container_test");
  const std::string root = tmp.path() + "/root";
  std::atomic<int> renames{0};
  std::atomic<bool> second_done{false};
  bool second_done_early = false;
  absl::Status second;
  std::thread other;
  SimulateNoRenameNoReplaceForTest(true, [&] {
    if (renames++ > 0) return;  // the second's, if it got here
    other = std::thread([&] {
      second = Lock::CreateDir(root, "same").status();
      second_done = true;
    });
    for (int i = 0; i < 50 && !second_done; ++i) usleep(10 * 1000);
    second_done_early = second_done;
  });
  absl::StatusOr<Lock> first = Lock::CreateDir(root, "same");
  if (other.joinable()) other.join();
  SimulateNoRenameNoReplaceForTest(false);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(second_done_early) << "the second create did not wait: " << second;
  EXPECT_TRUE(absl::IsAlreadyExists(second)) << second;
  EXPECT_EQ(renames.load(), 1);
  EXPECT_EQ(Names(root), std::vector<std::string>{"same"});
  const int fd = open(StateDir(root, "same").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_NE(flock(fd, LOCK_EX | LOCK_NB), 0) << "not locked";
  close(fd);
  struct stat sb;
  ASSERT_EQ(stat(StateDir(root, "same").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0711u);
}

TEST(HooksTest, RunsWithStateOnStdinAndReportsFailures) {
  const testutil::ScopedTempDir tmp("container_test");
  std::string dir = tmp.path();
  oci::Hook ok;
  ok.path = "/bin/sh";
  ok.args = {"sh", "-c", "cat > " + dir + "/got; echo $X >> " + dir + "/got"};
  ok.env = {"X=yes"};
  ASSERT_TRUE(RunHooks("prestart", {ok}, "{\"id\":\"c\"}").ok());
  EXPECT_EQ(Slurp(dir + "/got"), "{\"id\":\"c\"}yes\n");

  oci::Hook bad;
  bad.path = "/bin/sh";
  bad.args = {"sh", "-c", "exit 4"};
  absl::Status s = RunHooks("poststart", {ok, bad}, "{}");
  EXPECT_EQ(s.message(), "hooks.poststart[1]: /bin/sh exited with status 4");

  oci::Hook slow;
  slow.path = "/bin/sleep";
  slow.args = {"sleep", "10"};
  slow.timeout_s = 1;
  s = RunHooks("createRuntime", {slow}, "{}");
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;

  oci::Hook missing;
  missing.path = "/nonexistent/hook";
  s = RunHooks("prestart", {missing}, "{}");
  EXPECT_EQ(s.message(), "hooks.prestart[0]: /nonexistent/hook exited with status 127");
}

// RunHooks writes the state into a hook's stdin; a hook that exits without
// reading it may have closed the pipe before that write. The write's
// SIGPIPE must not reach its caller, whatever the caller's disposition
// (here the default, which kills): RunHooks takes it back. Old seedsc
// relied on its caller ignoring SIGPIPE: this test died of it (fresh-clone
// CI at f51cc4b, load ~8, before ef40ab8 made the test ignore it). A
// missing path exits at once, before it could read: many runs make the
// race likely.
TEST(HooksTest, AHookGoneBeforeItsStateIsWrittenRaisesNoSigpipe) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ASSERT_EQ(sigaction(SIGPIPE, &dfl, nullptr), 0);
  oci::Hook missing;
  missing.path = "/nonexistent/hook";
  for (int i = 0; i < 300; ++i) {
    absl::Status s = RunHooks("prestart", {missing}, "{}");
    ASSERT_EQ(s.message(), "hooks.prestart[0]: /nonexistent/hook exited with status 127");
  }
  sigset_t pending;
  ASSERT_EQ(sigpending(&pending), 0);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0) << "a SIGPIPE is left pending";
}

}  // namespace
}  // namespace seedvisor::container
