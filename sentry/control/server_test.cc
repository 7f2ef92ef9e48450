// ControlServer against a real kernel over the host's root (ptrace
// platform): the lifecycle rules, stdio paths, exit statuses, pause.
#include "sentry/control/server.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "shim/ttrpc/client.h"
#include "shim/ttrpc/server.h"
#include "test/util/temp_dir.h"

namespace seedvisor::control {
namespace {

std::string Slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What `p` holds once `done` says so, or after 10 s: the guest writes it
// when a loaded host lets it run, not within a fixed nap.
std::string SlurpOnce(const std::string& p, const std::function<bool(const std::string&)>& done) {
  std::string got = Slurp(p);
  for (int i = 0; i < 1000 && !done(got); ++i) {
    usleep(10000);
    got = Slurp(p);
  }
  return got;
}

class ServerTest : public ::testing::Test {
 protected:
  // A sandbox whose init is `sh -c script`.
  ControlServer& Make(const std::string& script) {
    sentry::KernelOptions opts;
    opts.platform = "ptrace";
    auto k = sentry::Kernel::Create(opts);
    EXPECT_TRUE(k.ok()) << k.status();
    // Guest threads may outlive the test body: the kernel is never freed.
    kernel_ = k->release();
    ContainerConfig cfg;
    cfg.id = "c1";
    cfg.init.argv = {"/bin/sh", "-c", script};
    cfg.init.envp = {"PATH=/usr/bin:/bin", "X=from-init"};
    server_ = new ControlServer(*kernel_, cfg);
    return *server_;
  }
  // A new empty file in the test's directory.
  std::string TempFile() {
    std::string path = tmp_.NewPath("file");
    std::ofstream{path};
    return path;
  }
  v1::StartRequest StartTo(const std::string& out) {
    v1::StartRequest r;
    r.set_container_id("c1");
    r.mutable_stdio()->set_stdout(out);
    r.mutable_stdio()->set_stderr(out);
    return r;
  }
  sentry::Kernel* kernel_ = nullptr;
  ControlServer* server_ = nullptr;
  // Everything a test makes on the host; under /tmp, not $TEST_TMPDIR:
  // TempFile() + ".sock" names a fork's control socket, which must fit
  // sun_path.
  testutil::ScopedTempDir tmp_ = testutil::ScopedTempDir::Short("control_server_test");
};

TEST_F(ServerTest, StartWaitAndExitStatus) {
  ControlServer& s = Make("echo hello $X; exit 3");
  auto st = s.State({});
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->status(), "created");
  EXPECT_EQ(st->init_pid(), 0);
  v1::ExecRequest ex;
  ex.add_args("true");
  EXPECT_TRUE(absl::IsFailedPrecondition(s.Exec(ex).status()));

  std::string out = TempFile();
  auto started = s.Start(StartTo(out));
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->pid(), 1);
  EXPECT_TRUE(absl::IsFailedPrecondition(s.Start(StartTo(out)).status()));
  auto w = s.Wait({});
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->exit_status(), 3u);
  EXPECT_EQ(w->wait_status(), 3 << 8);
  EXPECT_GT(w->exited_at_unix_nanos(), 0);
  EXPECT_EQ(Slurp(out), "hello from-init\n");
  st = s.State({});
  EXPECT_EQ(st->status(), "stopped");
  EXPECT_EQ(st->exit_status(), 3u);
  // Waiting does not reap: a second waiter gets the same answer.
  EXPECT_EQ(s.Wait({})->exit_status(), 3u);
}

// startContainer hooks run before the init, with the state on stdin and
// the hook's env; the init is still pid 1. (Guest writes stay in the
// sandbox: the init shows what the hook wrote.)
TEST_F(ServerTest, StartContainerHooks) {
  std::string log = TempFile();
  ControlServer& s = Make("cat " + log + "; echo init $$");
  std::string out = TempFile();
  v1::StartRequest r = StartTo(out);
  r.set_state_json("{\"id\":\"c1\"}");
  v1::Hook* h = r.add_start_container_hooks();
  h->set_path("/bin/sh");
  h->add_args("hook");
  h->add_args("-c");
  h->add_args("read s; echo $0 $$ $Y $s >> " + log);
  h->add_env("Y=from-hook");
  auto started = s.Start(r);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->pid(), 1);
  auto w = s.Wait({});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->wait_status(), 0);
  EXPECT_EQ(Slurp(out), "hook 2 from-hook {\"id\":\"c1\"}\ninit 1\n");
}

TEST_F(ServerTest, FailingStartContainerHookStopsTheContainer) {
  std::string out = TempFile();
  ControlServer& s = Make("echo init");
  v1::StartRequest r = StartTo(out);
  v1::Hook* ok = r.add_start_container_hooks();
  ok->set_path("/bin/true");
  v1::Hook* slow = r.add_start_container_hooks();
  slow->set_path("/bin/sleep");
  slow->add_args("sleep");
  slow->add_args("100");
  slow->set_timeout_s(1);
  auto started = s.Start(r);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.status().message(), "hooks.startContainer[1]: /bin/sleep timed out after 1s");
  EXPECT_EQ(s.State({})->status(), "stopped");
  EXPECT_TRUE(absl::IsFailedPrecondition(s.Start(StartTo(TempFile())).status()));
  EXPECT_EQ(Slurp(out), "");

  ControlServer& s2 = Make("true");
  v1::StartRequest r2 = StartTo(TempFile());
  v1::Hook* bad = r2.add_start_container_hooks();
  bad->set_path("/bin/sh");
  bad->add_args("sh");
  bad->add_args("-c");
  bad->add_args("kill -9 $$");
  EXPECT_EQ(s2.Start(r2).status().message(), "hooks.startContainer[0]: /bin/sh killed by signal 9");
}

TEST_F(ServerTest, ExecSignalProcesses) {
  ControlServer& s = Make("exec sleep 1000");
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  std::string out = TempFile();
  v1::ExecRequest ex;
  ex.set_container_id("c1");
  ex.set_exec_id("e1");
  for (const char* a : {"/bin/sh", "-c", "echo $Y; pwd; exit 4"}) ex.add_args(a);
  ex.add_env("Y=exec-env");
  ex.set_cwd("/tmp");
  ex.mutable_stdio()->set_stdout(out);
  auto e = s.Exec(ex);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_GT(e->pid(), 1);
  v1::WaitRequest wr;
  wr.set_pid(e->pid());
  EXPECT_EQ(s.Wait(wr)->exit_status(), 4u);
  EXPECT_EQ(Slurp(out), "exec-env\n/tmp\n");

  v1::ExecRequest missing;
  missing.add_args("/nonexistent/binary");
  EXPECT_TRUE(absl::IsNotFound(s.Exec(missing).status()));

  // The init shows up as pid 1, named "sleep" once its shell has exec'd
  // (10 s at most: an exec on ptrace at load 20-40 is slow).
  absl::StatusOr<v1::ProcessesResponse> ps;
  for (int i = 0; i < 1000; ++i) {
    ps = s.Processes({});
    ASSERT_TRUE(ps.ok());
    ASSERT_GE(ps->processes_size(), 1);
    if (ps->processes(0).cmd() == "sleep") break;
    usleep(10000);
  }
  EXPECT_EQ(ps->processes(0).pid(), 1);
  EXPECT_EQ(ps->processes(0).cmd(), "sleep");

  v1::SignalRequest bad;
  bad.set_container_id("other");
  bad.set_signal(SIGKILL);
  EXPECT_TRUE(absl::IsNotFound(s.Signal(bad).status()));
  // pid 1 without a handler ignores SIGTERM from outside (pid_namespaces(7)).
  v1::SignalRequest term;
  term.set_signal(SIGTERM);
  term.set_all(true);
  ASSERT_TRUE(s.Signal(term).ok());
  usleep(100000);
  EXPECT_EQ(s.State({})->status(), "running");
  v1::SignalRequest kill;
  kill.set_signal(SIGKILL);
  ASSERT_TRUE(s.Signal(kill).ok());
  EXPECT_EQ(s.Wait({})->exit_status(), 128u + SIGKILL);
  EXPECT_EQ(s.State({})->status(), "stopped");
}

TEST_F(ServerTest, InitWithAHandlerGetsSigterm) {
  // Signalled before its trap is set, pid 1 would ignore the SIGTERM and
  // the Wait never end: the shell says when it has set it.
  ControlServer& s = Make("trap 'exit 7' TERM; echo trapped; while :; do sleep 0.05; done");
  const std::string out = TempFile();
  ASSERT_TRUE(s.Start(StartTo(out)).ok());
  ASSERT_EQ(SlurpOnce(out, [](const std::string& got) { return !got.empty(); }), "trapped\n");
  v1::SignalRequest term;
  term.set_signal(SIGTERM);
  ASSERT_TRUE(s.Signal(term).ok());
  EXPECT_EQ(s.Wait({})->exit_status(), 7u);
}

TEST_F(ServerTest, PauseResume) {
  // The guest's root is an overlay: what it writes reaches the host only
  // through its stdout, here a file that grows while the loop runs.
  std::string counter = TempFile();
  ControlServer& s = Make("i=0; while :; do i=$((i+1)); echo $i; done");
  EXPECT_TRUE(absl::IsFailedPrecondition(s.Pause({}).status()));  // not running
  ASSERT_TRUE(s.Start(StartTo(counter)).ok());
  usleep(100000);
  {
    absl::StatusOr<v1::PauseResponse> paused = s.Pause({});
    ASSERT_TRUE(paused.ok()) << paused.status();
  }
  EXPECT_EQ(s.State({})->status(), "paused");
  // A write in flight at Pause may still land (slowly, on a loaded host):
  // wait for the output to settle, then it must stay still.
  std::string frozen = Slurp(counter);
  for (int i = 0; i < 20; ++i) {
    usleep(100000);
    std::string now = Slurp(counter);
    if (now == frozen) break;
    frozen = now;
  }
  usleep(300000);
  EXPECT_EQ(Slurp(counter), frozen) << "a paused sandbox kept running";
  EXPECT_TRUE(absl::IsFailedPrecondition(s.Pause({}).status()));
  ASSERT_TRUE(s.Resume({}).ok());
  EXPECT_EQ(s.State({})->status(), "running");
  EXPECT_NE(SlurpOnce(counter, [&](const std::string& got) { return got != frozen; }), frozen)
      << "a resumed sandbox did not run (10 s)";
  EXPECT_TRUE(absl::IsFailedPrecondition(s.Resume({}).status()));
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
}

// A vfork parent waiting for its child's exec parks in that wait: its
// child, parked before the exec (here: blocked opening a FIFO), would
// never let it reach a syscall boundary, and Pause failed after 5 s naming
// it (a shell's `while :; do sleep 1; done` vforks each sleep: 7 of 30
// pauses failed at load 20). Here the child blocks reading its stdin, a
// FIFO the test writes to after the resume; then the child execs and the
// parent goes on.
TEST_F(ServerTest, PauseParksAVforkParentWaitingForItsChild) {
  const char* srcdir = getenv("TEST_SRCDIR");
  const std::string blocker =
      absl::StrCat(srcdir != nullptr ? srcdir : ".", "/seedvisor/sentry/control/vfork_blocker");
  ASSERT_EQ(access(blocker.c_str(), X_OK), 0) << blocker;
  const std::string fifo = TempFile() + ".fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  const int w = open(fifo.c_str(), O_RDWR | O_CLOEXEC);  // a writer: the sandbox's open returns
  ASSERT_GE(w, 0) << strerror(errno);
  ControlServer& s = Make(blocker);
  const std::string out = TempFile();
  v1::StartRequest start = StartTo(out);
  start.mutable_stdio()->set_stdin(fifo);
  ASSERT_TRUE(s.Start(start).ok());
  // The child has said so: it is about to read its stdin or blocked in it.
  ASSERT_EQ(SlurpOnce(out, [](const std::string& got) { return !got.empty(); }), "child blocks\n");
  {
    absl::StatusOr<v1::PauseResponse> paused = s.Pause({});
    ASSERT_TRUE(paused.ok()) << paused.status();
  }
  EXPECT_EQ(s.State({})->status(), "paused");
  ASSERT_TRUE(s.Resume({}).ok());
  ASSERT_EQ(write(w, "x", 1), 1);  // the child's read returns
  EXPECT_EQ(s.Wait({})->exit_status(), 0u);
  close(w);
  EXPECT_EQ(Slurp(out), "child blocks\nparent resumed 0\n");
  unlink(fifo.c_str());
}

// A Fork at any moment Shutdown lets one in refuses, naming the reason:
// none copies a seed half ended (its guest killed, its stubs gone, its
// tasks running again; issue 9). Before, Shutdown killed the guest before
// it barred forks, and let its fork lock go before it unquiesced: a Fork
// in either gap host-forked that seed.
TEST_F(ServerTest, ForkRefusedOnceShutdownBegan) {
  ControlServer& s = Make("while :; do sleep 1; done");
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  {
    absl::StatusOr<v1::PauseResponse> paused = s.Pause({});
    ASSERT_TRUE(paused.ok()) << paused.status();
  }
  const std::string sock = TempFile() + ".sock";
  v1::ForkRequest fork;
  fork.set_new_id("c2");
  fork.set_control_address(sock);
  std::vector<std::string> steps;
  s.SetShutdownHookForTest([&](const char* step) {
    steps.push_back(step);
    absl::StatusOr<v1::ForkResponse> r = s.Fork(fork, absl::Seconds(5));
    if (r.ok()) kill(r->pid(), SIGKILL);  // a torn fork: not to outlive the test
    EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << step << ": " << r.status();
    EXPECT_EQ(r.status().message(),
              "sandbox fork: container \"c1\" is shutting down: it is no seed any more")
        << step;
  });
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
  EXPECT_GE(steps.size(), 2u);
  absl::StatusOr<v1::ForkResponse> after = s.Fork(fork, absl::Seconds(5));
  EXPECT_TRUE(absl::IsFailedPrecondition(after.status())) << after.status();
  EXPECT_NE(access(sock.c_str(), F_OK), 0) << "a fork made its control socket";
}

// A Pause once Shutdown has begun refuses: it would park the tasks that
// Shutdown's SIGKILL needs running to die.
TEST_F(ServerTest, PauseRefusedOnceShutdownBegan) {
  ControlServer& s = Make("while :; do sleep 1; done");
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  std::vector<std::string> steps;
  s.SetShutdownHookForTest([&](const char* step) {
    steps.push_back(step);
    absl::StatusOr<v1::PauseResponse> r = s.Pause({});
    EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << step << ": " << r.status();
    EXPECT_EQ(r.status().message(), "container \"c1\" is shutting down: it cannot be paused")
        << step;
  });
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
  EXPECT_GE(steps.size(), 2u);
}

TEST_F(ServerTest, KillBeforeStart) {
  ControlServer& s = Make("exit 0");
  v1::SignalRequest kill;
  kill.set_signal(SIGKILL);
  ASSERT_TRUE(s.Signal(kill).ok());
  EXPECT_EQ(s.State({})->status(), "stopped");
  EXPECT_EQ(s.Wait({})->exit_status(), 128u + SIGKILL);
  EXPECT_TRUE(absl::IsFailedPrecondition(s.Start({}).status()));
}

TEST_F(ServerTest, BadStdioPathFailsStart) {
  ControlServer& s = Make("exit 0");
  auto r = s.Start(StartTo("/nonexistent/dir/out"));
  EXPECT_TRUE(absl::IsFailedPrecondition(r.status())) << r.status();
  EXPECT_EQ(s.State({})->status(), "stopped");
}

// ---- A second container in the sandbox (CreateContainer, a pod's
// application container): its own root, its own processes, one kernel.

class ContainersTest : public ServerTest {
 protected:
  // A new empty directory in the test's directory.
  std::string TempDir() {
    std::string path = tmp_.NewPath("dir");
    EXPECT_EQ(mkdir(path.c_str(), 0700), 0) << path;
    return path;
  }
  // A root of its own (a host directory with a marker file and a symlink
  // "mnt" -> "/inside"), the host's programs bound in read-only, `data`
  // bound at /mnt (so at /inside, through the root's own symlink).
  v1::CreateContainerRequest Second(const std::string& script, const std::string& data,
                                    const std::string& out) {
    std::string root = TempDir();
    mkdir((root + "/inside").c_str(), 0755);
    mkdir((root + "/tmp").c_str(), 0755);
    chmod((root + "/tmp").c_str(), 01777);
    EXPECT_EQ(symlink("/inside", (root + "/mnt").c_str()), 0);
    std::ofstream(root + "/r-marker") << "in the second root\n";
    v1::CreateContainerRequest r;
    r.set_container_id("c2");
    r.set_root(root);
    for (const char* dir : {"/bin", "/lib", "/lib64", "/sbin", "/usr"}) {
      struct stat st;
      if (stat(dir, &st) != 0) continue;
      v1::Mount* m = r.add_mounts();
      m->set_destination(dir);
      m->set_type("bind");
      m->set_source(dir);
      m->add_options("rbind");
      m->add_options("ro");
    }
    v1::Mount* m = r.add_mounts();
    m->set_destination("/mnt");
    m->set_type("bind");
    m->set_source(data);
    m->add_options("ro");
    for (const char* a : {"/bin/sh", "-c"}) r.add_args(a);
    r.add_args(script);
    r.add_env("PATH=/usr/bin:/bin");
    r.mutable_stdio()->set_stdout(out);
    r.mutable_stdio()->set_stderr(out);
    return r;
  }
  // Runs `script` in container `id` and returns what it printed.
  std::string Run(ControlServer& s, const std::string& id, const std::string& script) {
    std::string out = TempFile();
    v1::ExecRequest ex;
    ex.set_container_id(id);
    for (const char* a : {"/bin/sh", "-c"}) ex.add_args(a);
    ex.add_args(script);
    ex.add_env("PATH=/usr/bin:/bin");
    ex.mutable_stdio()->set_stdout(out);
    ex.mutable_stdio()->set_stderr(out);
    auto e = s.Exec(ex);
    EXPECT_TRUE(e.ok()) << e.status();
    if (!e.ok()) return "";
    v1::WaitRequest wr;
    wr.set_container_id(id);
    wr.set_pid(e->pid());
    EXPECT_TRUE(s.Wait(wr).ok());
    return Slurp(out);
  }
  // Forks children that sleep until it fails (prints how many it made
  // and the errno) or has made 10.
  static constexpr const char* kForker =
      "exec python3 -c 'import os, time\n"
      "n = 0\n"
      "try:\n"
      "    while n < 10:\n"
      "        if os.fork() == 0:\n"
      "            time.sleep(1000)\n"
      "            os._exit(0)\n"
      "        n += 1\n"
      "except OSError as e:\n"
      "    print(n, e.errno)\n'";
  std::set<int> Pids(ControlServer& s, const std::string& id) {
    v1::ProcessesRequest r;
    r.set_container_id(id);
    auto ps = s.Processes(r);
    EXPECT_TRUE(ps.ok()) << ps.status();
    std::set<int> pids;
    if (ps.ok()) {
      for (const auto& p : ps->processes()) pids.insert(p.pid());
    }
    return pids;
  }
  // Creates and starts container `req` (c2, from Second()), waits until it
  // has `tasks` tasks and deletes it: their ids (fewer than `tasks` if it
  // never had them; then it is not deleted).
  std::set<int> RunThenDelete(ControlServer& s, const v1::CreateContainerRequest& req,
                              size_t tasks) {
    std::set<int> ids;
    absl::Status made = s.CreateContainer(req).status();
    EXPECT_TRUE(made.ok()) << made;
    if (!made.ok()) return ids;
    v1::StartRequest start;
    start.set_container_id(req.container_id());
    absl::Status started = s.Start(start).status();
    EXPECT_TRUE(started.ok()) << started;
    if (!started.ok()) return ids;
    for (int i = 0; i < 1000 && ids.size() < tasks; ++i, usleep(10000)) {
      ids = Pids(s, req.container_id());
    }
    if (ids.size() < tasks) return ids;
    v1::DeleteContainerRequest del;
    del.set_container_id(req.container_id());
    absl::Status deleted = s.DeleteContainer(del).status();
    EXPECT_TRUE(deleted.ok()) << deleted;
    return ids;
  }
};

TEST_F(ContainersTest, SecondContainerHasItsOwnRootAndProcesses) {
  ControlServer& s = Make("exec sleep 1000");
  std::string data = TempDir();
  std::ofstream(data + "/hello") << "from the host\n";
  std::string out = TempFile();
  v1::CreateContainerRequest req =
      Second("cat /r-marker /inside/hello; echo c2 > /tmp/only-c2; echo written; exec sleep 1000",
             data, out);
  // Joined before the sandbox's first container runs: created, not startable.
  ASSERT_TRUE(s.CreateContainer(req).ok());
  v1::StateRequest st2;
  st2.set_container_id("c2");
  EXPECT_EQ(s.State(st2)->status(), "created");
  v1::StartRequest start2;
  start2.set_container_id("c2");
  EXPECT_TRUE(absl::IsFailedPrecondition(s.Start(start2).status()));
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  auto started = s.Start(start2);
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_GT(started->pid(), 1);
  // Its root, its bind mount (found through its own symlink /mnt ->
  // /inside, not the sandbox root's). Waited for to the script's last line,
  // which it writes once /tmp/only-c2 is there.
  EXPECT_EQ(SlurpOnce(out, [](const std::string& got) { return absl::StrContains(got, "written\n"); }),
            "in the second root\nfrom the host\nwritten\n");
  EXPECT_EQ(Run(s, "c2", "cat /tmp/only-c2; test -e /proc/self/status && echo proc"), "c2\nproc\n");
  // The first container sees neither its root nor what it wrote.
  EXPECT_EQ(Run(s, "c1", "ls /r-marker /inside /tmp/only-c2 2>/dev/null; echo done"), "done\n");
  EXPECT_EQ(Run(s, "c1", "echo c1 > /tmp/only-c1; echo ok"), "ok\n");
  EXPECT_EQ(Run(s, "c2", "cat /tmp/only-c1 2>/dev/null; echo done"), "done\n");
  // Its own processes: ps of each lists only its own.
  std::set<int> p1 = Pids(s, "c1"), p2 = Pids(s, "c2");
  EXPECT_EQ(p1, std::set<int>{1});
  EXPECT_EQ(p2, std::set<int>{started->pid()});
  // Its init, like the first's, ignores SIGTERM it has no handler for;
  // kill --all reaches its processes only.
  v1::SignalRequest term;
  term.set_container_id("c2");
  term.set_signal(SIGTERM);
  term.set_all(true);
  ASSERT_TRUE(s.Signal(term).ok());
  usleep(100000);
  EXPECT_EQ(s.State(st2)->status(), "running");
  v1::SignalRequest kill = term;
  kill.set_signal(SIGKILL);
  ASSERT_TRUE(s.Signal(kill).ok());
  v1::WaitRequest w2;
  w2.set_container_id("c2");
  EXPECT_EQ(s.Wait(w2)->exit_status(), 128u + SIGKILL);
  EXPECT_EQ(s.State({})->status(), "running");
  // Another pid is not another container's.
  v1::SignalRequest other;
  other.set_container_id("c2");
  other.set_pid(1);
  other.set_signal(SIGKILL);
  EXPECT_TRUE(absl::IsNotFound(s.Signal(other).status()));
  EXPECT_EQ(s.State({})->status(), "running");
  // The whole sandbox's operations are the first container's.
  v1::PauseRequest pause2;
  pause2.set_container_id("c2");
  EXPECT_TRUE(absl::IsUnimplemented(s.Pause(pause2).status()));
  // Delete forgets it; the first container ends only with the sandbox.
  v1::DeleteContainerRequest del;
  del.set_container_id("c2");
  ASSERT_TRUE(s.DeleteContainer(del).ok());
  EXPECT_TRUE(absl::IsNotFound(s.State(st2).status()));
  EXPECT_TRUE(absl::IsNotFound(s.DeleteContainer(del).status()));
  del.set_container_id("c1");
  EXPECT_TRUE(absl::IsFailedPrecondition(s.DeleteContainer(del).status()));
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
}

TEST_F(ContainersTest, DeleteKillsARunningContainer) {
  ControlServer& s = Make("exec sleep 1000");
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  std::string data = TempDir();
  ASSERT_EQ(RunThenDelete(s, Second("echo x > /tmp/old; sleep 1000 & exec sleep 1000", data,
                                    TempFile()),
                          2)
                .size(),
            2u);
  EXPECT_EQ(Pids(s, "c1"), std::set<int>{1});
  EXPECT_EQ(s.State({})->status(), "running");
  // The id is free again, with a new root (not the old one's files).
  std::string out = TempFile();
  ASSERT_TRUE(s.CreateContainer(Second("ls /tmp; echo again", data, out)).ok());
  v1::StartRequest start2;
  start2.set_container_id("c2");
  ASSERT_TRUE(s.Start(start2).ok());
  v1::WaitRequest w2;
  w2.set_container_id("c2");
  EXPECT_EQ(s.Wait(w2)->exit_status(), 0u);
  EXPECT_EQ(Slurp(out), "again\n");
}

// In a paused sandbox (a paused pod, a seed) a SIGKILL still ends the
// tasks it is sent to, as in a frozen cgroup v2 (runc's paused container
// dies of `kill -9`; `delete --force` kills it): Signal and DeleteContainer
// of one container end its processes while the others stay parked. The
// quiesced state changed, so a seed's prepared fork state is not used
// (the epoch moves on). Before, the parked tasks never ran to die: Delete
// failed after 10 s ("did not die within 10 s of SIGKILL").
TEST_F(ContainersTest, PausedSandboxKillAndDeleteEndOneContainer) {
  ControlServer& s = Make("exec sleep 1000");
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  std::string data = TempDir();
  for (const char* id : {"c2", "c3"}) {
    v1::CreateContainerRequest req = Second("sleep 1000 & exec sleep 1000", data, TempFile());
    req.set_container_id(id);
    ASSERT_TRUE(s.CreateContainer(req).ok());
    v1::StartRequest start;
    start.set_container_id(id);
    ASSERT_TRUE(s.Start(start).ok());
    std::set<int> ids;
    for (int i = 0; i < 1000 && ids.size() < 2; ++i, usleep(10000)) ids = Pids(s, id);
    ASSERT_EQ(ids.size(), 2u) << id;
  }
  {
    absl::StatusOr<v1::PauseResponse> paused = s.Pause({});
    ASSERT_TRUE(paused.ok()) << paused.status();
  }
  const uint64_t epoch = kernel_->quiesce_epoch();
  v1::SignalRequest kill;
  kill.set_container_id("c3");
  kill.set_signal(SIGKILL);
  kill.set_all(true);
  ASSERT_TRUE(s.Signal(kill).ok());
  v1::WaitRequest w3;
  w3.set_container_id("c3");
  auto waited = s.Wait(w3);
  ASSERT_TRUE(waited.ok()) << waited.status();
  EXPECT_EQ(waited->exit_status(), 128u + SIGKILL);
  // Wait answers once c3's first process is gone; its other process was
  // killed too but may still be on its way out (the CI at e3cf990, load 24).
  std::set<int> left = Pids(s, "c3");
  for (int i = 0; i < 1000 && !left.empty(); ++i, usleep(10000)) left = Pids(s, "c3");
  EXPECT_TRUE(left.empty()) << left.size() << " of c3's processes outlived its SIGKILL by 10 s";
  v1::DeleteContainerRequest del;
  del.set_container_id("c2");
  absl::Status deleted = s.DeleteContainer(del).status();
  ASSERT_TRUE(deleted.ok()) << deleted;
  EXPECT_NE(kernel_->quiesce_epoch(), epoch) << "a seed's fork state of before would fit";
  v1::StateRequest st2;
  st2.set_container_id("c2");
  EXPECT_TRUE(absl::IsNotFound(s.State(st2).status()));
  // The first container stays paused, its task parked, until Resume.
  EXPECT_EQ(s.State({})->status(), "paused");
  EXPECT_EQ(Pids(s, "c1"), std::set<int>{1});
  {
    absl::MutexLock l(&kernel_->mu());
    EXPECT_TRUE(kernel_->park_requested());
    EXPECT_TRUE(kernel_->AllParked());
  }
  ASSERT_TRUE(s.Resume({}).ok());
  EXPECT_EQ(s.State({})->status(), "running");
  EXPECT_EQ(Run(s, "c1", "echo alive"), "alive\n");
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
}

// A pod's container has its own pids limit (linux.resources.pids.limit,
// counted over its own tasks); the first container's tasks are not bound by it.
TEST_F(ContainersTest, PidsLimitIsPerContainer) {
  ControlServer& s = Make("exec sleep 1000");
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  v1::CreateContainerRequest req = Second("exec sleep 1000", TempDir(), TempFile());
  req.set_pids_limit(6);
  ASSERT_TRUE(s.CreateContainer(req).ok());
  v1::StartRequest start2;
  start2.set_container_id("c2");
  ASSERT_TRUE(s.Start(start2).ok());
  // Its init and the forker are 2 of its 6.
  EXPECT_EQ(Run(s, "c2", kForker), "4 11\n");
  v1::StatsRequest st2;
  st2.set_container_id("c2");
  auto stats = s.Stats(st2);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->pids_current(), 5u);  // the forker is reaped
  EXPECT_EQ(stats->pids_limit(), 6u);
  // The first container's tasks: the sandbox's limit (none) only.
  EXPECT_EQ(Run(s, "c1", kForker), "");
  auto stats1 = s.Stats({});
  ASSERT_TRUE(stats1.ok()) << stats1.status();
  EXPECT_EQ(stats1->pids_limit(), 0u);
  EXPECT_GE(stats1->pids_current(), 16u);  // both containers' tasks
  // An update raises it (runc update --pids-limit of that container).
  v1::UpdateRequest up;
  up.set_container_id("c2");
  up.set_pids_limit(8);
  ASSERT_TRUE(s.Update(up).ok());
  EXPECT_EQ(Run(s, "c2", kForker), "2 11\n");
  EXPECT_EQ(s.Stats(st2)->pids_limit(), 8u);
  // Deleted and made again without one: no limit is left over.
  v1::DeleteContainerRequest del;
  del.set_container_id("c2");
  ASSERT_TRUE(s.DeleteContainer(del).ok());
  ASSERT_TRUE(s.CreateContainer(Second("exec sleep 1000", TempDir(), TempFile())).ok());
  ASSERT_TRUE(s.Start(start2).ok());
  EXPECT_EQ(Run(s, "c2", kForker), "");
  EXPECT_EQ(s.Stats(st2)->pids_limit(), 0u);
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
}

// Once Shutdown has begun, every call that would start, park or resume
// guest tasks refuses, naming why: a process started after Shutdown's kill
// sweep would outlive its promise that the sandbox's host processes are
// gone (delete then finds the cgroup busy, or a stub leaks).
TEST_F(ContainersTest, NothingStartsOnceShutdownBegan) {
  ControlServer& s = Make("exec sleep 1000");
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  ASSERT_TRUE(s.CreateContainer(Second("exec sleep 1000", TempDir(), TempFile())).ok());
  std::vector<std::string> steps;
  s.SetShutdownHookForTest([&](const char* step) {
    steps.push_back(step);
    auto refused = [&](const absl::Status& st, const std::string& consequence) {
      EXPECT_TRUE(absl::IsFailedPrecondition(st)) << step << ": " << st;
      EXPECT_EQ(st.message(), "container \"c1\" is shutting down: " + consequence) << step;
    };
    v1::StartRequest start2;
    start2.set_container_id("c2");
    refused(s.Start(start2).status(), "it cannot be started");
    v1::ExecRequest ex;
    ex.add_args("true");
    refused(s.Exec(ex).status(), "nothing can be exec'd in it");
    refused(s.Resume({}).status(), "it cannot be resumed");
    v1::CreateContainerRequest c3 = Second("exec sleep 1000", TempDir(), TempFile());
    c3.set_container_id("c3");
    refused(s.CreateContainer(c3).status(), "no container can be created in it");
  });
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
  EXPECT_GE(steps.size(), 2u);
}

// A pod's container with host cgroups of its own (review V10, issue 14):
// only its processes' stubs live there. A paused pod keeps no spares (a
// spare's copy of the container's stub would be charged to the
// container's cgroups while it waited for a fork that may never come). A
// Fork needs a cgroup of the fork's own for the container, and names the
// container when it has none or cannot open it; given one, the fork's copy
// of the container's process is charged there, under its limit (its
// memory hog is OOM-killed there), never in the seed's, and the fork serves
// the container under its id.
TEST_F(ContainersTest, PodWithAContainerCgroupIsForkedIntoTheForksOwn) {
  // As a sentry's main() does: abseil's deadlock detection would see the
  // locks the forking thread held as still held in the fork.
  sentry::PrepareForSandboxForks();
  const std::string name = absl::StrCat("seedvisor-server-test-", getpid());
  const std::string forks = name + "-fork";
  const std::string dir = "/sys/fs/cgroup/memory/" + name;
  const std::string fork_dir = "/sys/fs/cgroup/memory/" + forks;
  if (mkdir(dir.c_str(), 0755) != 0) {
    GTEST_SKIP() << "cannot make a memory cgroup here (" << dir << ": " << strerror(errno) << ")";
  }
  ASSERT_EQ(mkdir(fork_dir.c_str(), 0755), 0) << fork_dir << ": " << strerror(errno);
  // A cgroup's processes, one a line (the host's, in this pid namespace).
  const auto procs = [&](const std::string& d) {
    std::vector<std::string> lines;
    std::istringstream in(Slurp(d + "/cgroup.procs"));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  };
  ControlServer& s = Make("exec sleep 1000");
  // However the test ends: the sandboxes' stubs go, then the cgroups.
  pid_t fork_pid = 0;
  struct Cleanup {
    ControlServer& s;
    const pid_t& fork_pid;
    std::vector<std::string> dirs;
    bool shut = false;
    ~Cleanup() {
      if (fork_pid > 0) kill(fork_pid, SIGKILL);  // its anchor then ends its stubs
      if (!shut && s.Shutdown({}).ok()) s.WaitShutdown();
      for (const std::string& d : dirs) {
        for (int i = 0; i < 1000 && rmdir(d.c_str()) != 0 && errno != ENOENT; ++i) usleep(10000);
      }
    }
  } cleanup{s, fork_pid, {dir, fork_dir}};
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  v1::CreateContainerRequest req = Second("", TempDir(), TempFile());
  // One image, one stub: a shell's exec would leave its old stub in the
  // cgroup for a moment.
  req.clear_args();
  for (const char* a : {"/bin/sleep", "1000"}) req.add_args(a);
  req.set_cgroup(name);
  absl::StatusOr<v1::CreateContainerResponse> made = s.CreateContainer(req);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_TRUE(made->host_cgroup());
  v1::StartRequest start;
  start.set_container_id("c2");
  ASSERT_TRUE(s.Start(start).ok());
  std::vector<std::string> in = procs(dir);
  for (int i = 0; i < 1000 && in.size() != 1; ++i, usleep(10000)) in = procs(dir);
  ASSERT_EQ(in.size(), 1u) << "c2's one process's stub";
  {
    absl::StatusOr<v1::PauseResponse> paused = s.Pause({});
    ASSERT_TRUE(paused.ok()) << paused.status();
  }
  // The spare loop runs at once after a pause; give it time to have made
  // spares, had it made any.
  sleep(2);
  EXPECT_EQ(procs(dir), in) << "something joined c2's cgroup while the pod was paused";

  v1::ForkRequest fork;
  fork.set_new_id("c1-fork");
  fork.set_control_address(TempFile() + ".sock");
  const std::string fork_out = TempFile();
  fork.mutable_stdio()->set_stdout(fork_out);
  fork.mutable_stdio()->set_stderr(fork_out);
  const auto refused = [&](v1::ForkRequest r) {
    // A socket of its own: a fork that failed after it made its socket
    // leaves it to its caller to remove.
    r.set_control_address(TempFile() + ".sock");
    absl::StatusOr<v1::ForkResponse> f = s.Fork(r, absl::Seconds(20));
    if (f.ok()) kill(f->pid(), SIGKILL);
    return f.status();
  };
  // No cgroup for c2: refused before anything is forked.
  absl::Status no_cgroup = refused(fork);
  EXPECT_TRUE(absl::IsFailedPrecondition(no_cgroup)) << no_cgroup;
  EXPECT_TRUE(absl::StrContains(no_cgroup.message(), "\"c2\"")) << no_cgroup;
  // One for a container the pod does not have.
  v1::ForkRequest stray = fork;
  (*stray.mutable_member_cgroups())["c2"] = forks;
  (*stray.mutable_member_cgroups())["c9"] = forks;
  absl::Status unknown = refused(stray);
  EXPECT_TRUE(absl::IsInvalidArgument(unknown)) << unknown;
  EXPECT_TRUE(absl::StrContains(unknown.message(), "\"c9\"")) << unknown;
  // One the fork cannot open: the fork fails, naming the container.
  v1::ForkRequest missing = fork;
  (*missing.mutable_member_cgroups())["c2"] = name + "-missing";
  absl::Status not_there = refused(missing);
  EXPECT_FALSE(not_there.ok());
  EXPECT_TRUE(absl::StrContains(not_there.message(), "\"c2\"")) << not_there;
  EXPECT_TRUE(absl::StrContains(not_there.message(), name + "-missing")) << not_there;
  // (The failed fork's copy of c2's stub, born in the seed's c2 cgroup
  // before the fork could move it, is killed with the fork.)
  std::vector<std::string> now = procs(dir);
  for (int i = 0; i < 1000 && now != in; ++i, usleep(10000)) now = procs(dir);
  EXPECT_EQ(now, in) << "a refused fork left something in c2's cgroup";
  EXPECT_TRUE(procs(fork_dir).empty());

  // The fork's own, limited to 64 MiB.
  std::ofstream(fork_dir + "/memory.limit_in_bytes") << (64 << 20);
  (*fork.mutable_member_cgroups())["c2"] = forks;
  absl::StatusOr<v1::ForkResponse> forked = s.Fork(fork, absl::Seconds(20));
  ASSERT_TRUE(forked.ok()) << forked.status();
  fork_pid = forked->pid();
  const std::vector<std::string> fork_procs = procs(fork_dir);
  ASSERT_EQ(fork_procs.size(), 1u) << "the fork's c2's one process's stub";
  EXPECT_NE(fork_procs[0], in[0]);
  EXPECT_EQ(procs(dir), in) << "the fork's process is in the seed's c2 cgroup";
  // The forked sentry let go of the seed's c2 cgroup (the seed holds it).
  const auto fds_on = [](pid_t pid, const std::string& file) {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/fd"))) {
      std::error_code ec;
      if (std::filesystem::read_symlink(e.path(), ec) == file) ++n;
    }
    return n;
  };
  EXPECT_EQ(fds_on(getpid(), dir + "/cgroup.procs"), 1);
  EXPECT_EQ(fds_on(fork_pid, dir + "/cgroup.procs"), 0) << "the fork holds the seed's c2 cgroup";
  EXPECT_EQ(fds_on(fork_pid, fork_dir + "/cgroup.procs"), 1);

  // The fork serves c2 under its id, and c2's new processes there are
  // charged to the fork's cgroup: a hog of 192 MiB is OOM-killed there.
  absl::StatusOr<std::unique_ptr<ttrpc::Client>> client = ttrpc::Client::Dial(fork.control_address());
  ASSERT_TRUE(client.ok()) << client.status();
  v1::StateRequest state_req;
  state_req.set_container_id("c2");
  v1::StateResponse state;
  absl::Status called = (*client)->Call(kService, "State", state_req, &state, absl::Seconds(10));
  ASSERT_TRUE(called.ok()) << called;
  EXPECT_EQ(state.status(), "running");
  v1::ExecRequest hog;
  hog.set_container_id("c2");
  for (const char* a : {"/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=192M", "count=1",
                        "iflag=fullblock"}) {
    hog.add_args(a);
  }
  const std::string hog_out = TempFile();
  hog.mutable_stdio()->set_stdout(hog_out);
  hog.mutable_stdio()->set_stderr(hog_out);
  v1::ExecResponse execd;
  called = (*client)->Call(kService, "Exec", hog, &execd, absl::Seconds(10));
  ASSERT_TRUE(called.ok()) << called;
  v1::WaitRequest wait_req;
  wait_req.set_container_id("c2");
  wait_req.set_pid(execd.pid());
  v1::WaitResponse waited;
  called = (*client)->Call(kService, "Wait", wait_req, &waited, absl::Seconds(60));
  ASSERT_TRUE(called.ok()) << called;
  EXPECT_EQ(waited.exit_status(), 128u + SIGKILL) << Slurp(hog_out);
  std::string oom = Slurp(fork_dir + "/memory.oom_control");
  EXPECT_FALSE(absl::StrContains(oom, "oom_kill 0")) << oom;
  oom = Slurp(dir + "/memory.oom_control");
  EXPECT_TRUE(absl::StrContains(oom, "oom_kill 0")) << "the seed's c2 cgroup: " << oom;
  EXPECT_EQ(procs(dir), in);

  v1::ShutdownResponse bye;
  EXPECT_TRUE((*client)->Call(kService, "Shutdown", v1::ShutdownRequest(), &bye,
                              absl::Seconds(30)).ok());
  client->reset();
  for (int i = 0; i < 1000 && !procs(fork_dir).empty(); ++i) usleep(10000);
  EXPECT_TRUE(procs(fork_dir).empty()) << "the fork's stubs outlived its Shutdown";
  ASSERT_TRUE(s.Resume({}).ok());
  v1::DeleteContainerRequest del;
  del.set_container_id("c2");
  absl::Status deleted = s.DeleteContainer(del).status();
  ASSERT_TRUE(deleted.ok()) << deleted;
  cleanup.shut = true;
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
  for (const std::string& d : {dir, fork_dir}) {
    for (int i = 0; i < 1000 && rmdir(d.c_str()) != 0; ++i) usleep(10000);
    EXPECT_NE(access(d.c_str(), F_OK), 0) << d << " is still there (a stub left in it?)";
  }
}

// A container with a pid namespace of its own (CRI's NamespaceMode
// CONTAINER): its init is pid 1 there, an exec joins it, its /proc shows
// its own processes only, by their ids there; the first container's /proc
// shows them by their sandbox ids. Its init's end kills the rest of it
// (zap_pid_namespace()). Without one, a container shares the sandbox's.
TEST_F(ContainersTest, OwnPidNamespace) {
  ControlServer& s = Make("exec sleep 1000");
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  v1::CreateContainerRequest req = Second("exec sleep 1000", TempDir(), TempFile());
  req.set_own_pid_namespace(true);
  ASSERT_TRUE(s.CreateContainer(req).ok());
  v1::StartRequest start2;
  start2.set_container_id("c2");
  auto started = s.Start(start2);
  ASSERT_TRUE(started.ok()) << started.status();
  const int init2 = started->pid();  // the sandbox's id
  EXPECT_GT(init2, 1);
  // Start answers once the init's first exec (sh) succeeded; its `exec
  // sleep` follows on its own: wait for it (it read "sh" in a CI run),
  // from c1, whose processes take no pid of c2's namespace.
  const std::string comm2 = absl::StrCat("cat /proc/", init2, "/comm");
  for (int i = 0; i < 500 && Run(s, "c1", comm2) != "sleep\n"; ++i) usleep(10000);
  EXPECT_EQ(Run(s, "c2", "echo $$ $PPID; cd /proc; echo [0-9]*; readlink self; cat 1/comm"),
            "2 0\n1 2\n3\nsleep\n");
  EXPECT_EQ(Run(s, "c2", "grep -E '^(Pid|PPid|NSpid):' /proc/1/status"),
            "Pid:\t1\nPPid:\t0\nNSpid:\t1\n");
  EXPECT_EQ(Run(s, "c1",
                absl::StrCat("cat /proc/", init2, "/comm; grep ^NSpid: /proc/", init2, "/status")),
            absl::StrCat("sleep\nNSpid:\t", init2, "\t1\n"));
  // A process exec'd into it dies with its init.
  v1::ExecRequest ex;
  ex.set_container_id("c2");
  for (const char* a : {"/bin/sleep", "1000"}) ex.add_args(a);
  auto sleeper = s.Exec(ex);
  ASSERT_TRUE(sleeper.ok()) << sleeper.status();
  v1::SignalRequest kill;
  kill.set_container_id("c2");
  kill.set_signal(SIGKILL);
  ASSERT_TRUE(s.Signal(kill).ok());
  v1::WaitRequest w;
  w.set_container_id("c2");
  EXPECT_EQ(s.Wait(w)->exit_status(), 128u + SIGKILL);
  w.set_pid(sleeper->pid());
  auto ws = s.Wait(w);
  ASSERT_TRUE(ws.ok()) << ws.status();
  EXPECT_EQ(ws->wait_status(), SIGKILL);
  // Shared: the sandbox's ids, the first container's init is 1.
  v1::CreateContainerRequest shared = Second("exec sleep 1000", TempDir(), TempFile());
  shared.set_container_id("c3");
  ASSERT_TRUE(s.CreateContainer(shared).ok());
  v1::StartRequest start3;
  start3.set_container_id("c3");
  ASSERT_TRUE(s.Start(start3).ok());
  EXPECT_EQ(Run(s, "c3", absl::StrCat("cat /proc/1/comm; test $$ -gt ", init2, " && echo later")),
            "sleep\nlater\n");
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
}

// A container in another container's pid namespace (CRI's NamespaceMode
// TARGET: kubectl debug's ephemeral containers) sees that one's processes
// by their ids there and they see its; a third container with a namespace
// of its own sees neither. Each container outside the sandbox's namespace
// has a host thread of its own (CreateContainerResponse.host_thread: what
// seedsc reports as its pid), until it is deleted; the one a container
// names must be in the sandbox.
TEST_F(ContainersTest, TargetPidNamespace) {
  ControlServer& s = Make("exec sleep 1000");
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  auto start = [&](const std::string& id, v1::CreateContainerRequest req) -> pid_t {
    req.set_container_id(id);
    auto made = s.CreateContainer(req);
    EXPECT_TRUE(made.ok()) << made.status();
    v1::StartRequest sr;
    sr.set_container_id(id);
    EXPECT_TRUE(s.Start(sr).ok());
    return made.ok() ? made->host_thread() : -1;
  };
  v1::CreateContainerRequest target = Second("exec sleep 1000", TempDir(), TempFile());
  target.set_own_pid_namespace(true);
  const pid_t target_thread = start("target", target);
  v1::CreateContainerRequest debug = Second("exec sleep 1001", TempDir(), TempFile());
  debug.set_pid_namespace_of("target");
  const pid_t debug_thread = start("debug", debug);
  v1::CreateContainerRequest third = Second("exec sleep 1002", TempDir(), TempFile());
  third.set_own_pid_namespace(true);
  const pid_t third_thread = start("third", third);
  // Host threads of this process, one per container.
  for (pid_t t : {target_thread, debug_thread, third_thread}) {
    EXPECT_GT(t, 0);
    EXPECT_EQ(access(absl::StrCat("/proc/self/task/", t).c_str(), F_OK), 0) << t;
  }
  EXPECT_NE(target_thread, debug_thread);
  EXPECT_NE(debug_thread, third_thread);
  // Every process but the shell itself, by its id in the reader's namespace.
  const std::string ps =
      "cd /proc; for p in [0-9]*; do [ $p = $$ ] || echo $p $(tr '\\0' ' ' <$p/cmdline); done";
  // (Each init's shell execs its sleep after Start has answered.)
  auto settled = [&](const std::string& id, const std::string& want) {
    std::string got;
    for (int i = 0; i < 100 && (got = Run(s, id, ps)) != want; ++i) usleep(50 * 1000);
    return got;
  };
  EXPECT_EQ(settled("debug", "1 sleep 1000\n2 sleep 1001\n"), "1 sleep 1000\n2 sleep 1001\n");
  EXPECT_EQ(settled("target", "1 sleep 1000\n2 sleep 1001\n"), "1 sleep 1000\n2 sleep 1001\n");
  EXPECT_EQ(settled("third", "1 sleep 1002\n"), "1 sleep 1002\n");
  // Naming a container the sandbox does not have, or both modes at once.
  v1::CreateContainerRequest bad = Second("exec sleep 1000", TempDir(), TempFile());
  bad.set_container_id("bad");
  bad.set_pid_namespace_of("nobody");
  EXPECT_EQ(s.CreateContainer(bad).status().code(), absl::StatusCode::kNotFound);
  bad.set_pid_namespace_of("target");
  bad.set_own_pid_namespace(true);
  EXPECT_EQ(s.CreateContainer(bad).status().code(), absl::StatusCode::kInvalidArgument);
  // Deleting a container ends its host thread (here, without a ttrpc
  // server, a thread of its own: it exits once released), Shutdown the rest.
  v1::DeleteContainerRequest del;
  del.set_container_id("debug");
  ASSERT_TRUE(s.DeleteContainer(del).ok());
  auto ended = [](pid_t t) {
    for (int i = 0; i < 500; ++i) {
      if (access(absl::StrCat("/proc/self/task/", t).c_str(), F_OK) != 0) return true;
      usleep(10 * 1000);
    }
    return false;
  };
  EXPECT_TRUE(ended(debug_thread));
  EXPECT_EQ(access(absl::StrCat("/proc/self/task/", third_thread).c_str(), F_OK), 0);
  ASSERT_TRUE(s.Shutdown({}).ok());
  EXPECT_TRUE(ended(target_thread));
  EXPECT_TRUE(ended(third_thread));
  s.WaitShutdown();
}

// With a ttrpc server attached (as in a sandbox), a container's host
// thread is still one of its own, not a thread of the server's pool that
// would serve on under the same id once the container is gone (and be
// the next container's): Delete returns after it has exited.
TEST_F(ContainersTest, HostThreadEndsWithItsContainerUnderAServer) {
  ControlServer& s = Make("exec sleep 1000");
  auto* rpc = new ttrpc::Server;  // outlives the test's threads, as the kernel
  s.Register(*rpc);
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  auto task = [](pid_t t) { return absl::StrCat("/proc/self/task/", t); };
  std::vector<pid_t> seen;
  for (int i = 0; i < 4; ++i) {
    v1::CreateContainerRequest req = Second("exec sleep 1000", TempDir(), TempFile());
    req.set_container_id(absl::StrCat("own", i));
    req.set_own_pid_namespace(true);
    auto made = s.CreateContainer(req);
    ASSERT_TRUE(made.ok()) << made.status();
    const pid_t t = made->host_thread();
    ASSERT_GT(t, 0);
    EXPECT_EQ(access(task(t).c_str(), F_OK), 0) << t;
    for (pid_t old : seen) EXPECT_NE(t, old) << "container " << i;
    seen.push_back(t);
    v1::DeleteContainerRequest del;
    del.set_container_id(req.container_id());
    ASSERT_TRUE(s.DeleteContainer(del).ok());
    // Joined, the thread is gone; its /proc entry goes a moment later
    // (release_task after the tid is cleared): up to 1 s.
    for (int w = 0; w < 100 && access(task(t).c_str(), F_OK) == 0; ++w) usleep(10000);
    EXPECT_NE(access(task(t).c_str(), F_OK), 0) << "thread " << t << " outlived its container";
  }
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
}

// Deleting a container, or creating one with a host thread of its own,
// waits for no Fork: the thread's start and end exclude only a host fork
// of the sentry, not the fork lock, which a Fork holds for as long as it
// opens the fork's stdio (here a fifo whose reader comes late), receives
// its network device or makes a spare. Before, both waited for the Fork
// to let the fork lock go (containers with a pid namespace of their own,
// CRI's default, have such a thread).
TEST_F(ContainersTest, ContainersComeAndGoWhileAForkWaits) {
  ControlServer& s = Make("while :; do sleep 1; done");
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  v1::CreateContainerRequest c2 = Second("exec sleep 1000", TempDir(), TempFile());
  c2.set_own_pid_namespace(true);
  auto made = s.CreateContainer(c2);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_GT(made->host_thread(), 0);
  {
    absl::StatusOr<v1::PauseResponse> paused = s.Pause({});
    ASSERT_TRUE(paused.ok()) << paused.status();
  }
  const std::string fifo = TempFile() + ".fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  v1::ForkRequest fork;
  fork.set_new_id("forked");
  fork.set_control_address(TempFile() + ".sock");
  fork.mutable_stdio()->set_stdout(fifo);
  // Given up on by its caller before the fifo's reader comes: nothing is
  // forked once it goes on.
  constexpr absl::Duration kForkTimeout = absl::Seconds(3);
  const absl::Time fork_began = absl::Now();
  std::atomic<pid_t> forking_tid{0};
  absl::Status forked;
  std::thread forking([&] {
    forking_tid = gettid();
    forked = s.Fork(fork, kForkTimeout).status();
  });
  // Until the Fork waits in the fifo's open(2), under the fork lock.
  const auto in_open = [&] {
    std::string call = Slurp(absl::StrCat("/proc/self/task/", forking_tid.load(), "/syscall"));
    return call.rfind(absl::StrCat(SYS_openat, " "), 0) == 0;
  };
  bool waits = false;
  for (int i = 0; i < 1000 && !waits; ++i) {
    usleep(10000);
    waits = forking_tid != 0 && in_open();
  }
  EXPECT_TRUE(waits) << "the Fork never opened its stdio";
  absl::Notification done;
  absl::Status created, deleted, deleted_new;
  absl::Duration took;
  bool fork_waited_all_along = false;
  std::thread changing([&] {
    const absl::Time t = absl::Now();
    v1::CreateContainerRequest c4 = Second("exec sleep 1000", TempDir(), TempFile());
    c4.set_container_id("c4");
    c4.set_own_pid_namespace(true);
    auto c4_made = s.CreateContainer(c4);
    created = c4_made.status();
    if (c4_made.ok() && c4_made->host_thread() <= 0) {
      created = absl::InternalError("c4 has no host thread");
    }
    v1::DeleteContainerRequest del;
    del.set_container_id("c2");
    deleted = s.DeleteContainer(del).status();
    del.set_container_id("c4");
    deleted_new = s.DeleteContainer(del).status();
    took = absl::Now() - t;
    // The Fork holds the fork lock until the fifo's reader comes, which is
    // not before this: done while it still waits, they did not wait for it.
    fork_waited_all_along = in_open();
    done.Notify();
  });
  // Only a create or delete that waits for the Fork takes this long: the
  // reader comes after it (or after this, to end the test).
  const bool done_first = done.WaitForNotificationWithTimeout(absl::Seconds(60));
  // The reader comes once the Fork's caller has given up.
  absl::SleepFor(fork_began + kForkTimeout - absl::Now());
  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  EXPECT_GE(reader, 0);
  forking.join();
  changing.join();
  if (reader >= 0) close(reader);
  EXPECT_TRUE(done_first) << "creating and deleting containers waited for the Fork";
  EXPECT_TRUE(fork_waited_all_along)
      << "the Fork no longer waited when creating and deleting ended (" << took
      << "): they may have waited for it";
  EXPECT_TRUE(created.ok()) << created;
  EXPECT_TRUE(deleted.ok()) << deleted;
  EXPECT_TRUE(deleted_new.ok()) << deleted_new;
  EXPECT_TRUE(absl::IsDeadlineExceeded(forked)) << forked;
  EXPECT_NE(access(fork.control_address().c_str(), F_OK), 0) << "a fork made its control socket";
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
}

// A zombie of a deleted container, reaped after a new container of the
// same id was made, gives back its own charge, not the new container's
// (the charge is the group's, not its container id's).
TEST_F(ContainersTest, StaleZombieDoesNotUnchargeANewContainerOfItsId) {
  // The first container's init reaps its children when told (SIGUSR1) and
  // then prints how many it reaped (its stdout: the host sees no file it
  // writes in the sandbox's root).
  ControlServer& s = Make(
      "exec python3 -c 'import os, signal\n"
      "def reap(*a):\n"
      "    n = 0\n"
      "    while True:\n"
      "        try:\n"
      "            pid, _ = os.waitpid(-1, os.WNOHANG)\n"
      "        except ChildProcessError:\n"
      "            break\n"
      "        if pid == 0:\n"
      "            break\n"
      "        n += 1\n"
      "    print(\"reaped\", n, flush=True)\n"
      "signal.signal(signal.SIGUSR1, reap)\n"
      "print(\"ready\", flush=True)\n"
      "while True:\n"
      "    signal.pause()\n'");
  const std::string out1 = TempFile();
  ASSERT_TRUE(s.Start(StartTo(out1)).ok());
  for (int i = 0; i < 3000 && Slurp(out1).empty(); ++i) usleep(10000);
  ASSERT_EQ(Slurp(out1), "ready\n");
  // c2's init has a child; deleting c2 kills both, and the child, orphaned,
  // stays a zombie of the first container's init.
  v1::CreateContainerRequest old = Second("sleep 1000 & exec sleep 1000", TempDir(), TempFile());
  old.set_pids_limit(6);
  ASSERT_EQ(RunThenDelete(s, old, 2).size(), 2u);
  // c2 again, with a limit, then the old zombie is reaped.
  v1::CreateContainerRequest again = Second("exec sleep 1000", TempDir(), TempFile());
  again.set_pids_limit(6);
  ASSERT_TRUE(s.CreateContainer(again).ok());
  v1::StartRequest start2;
  start2.set_container_id("c2");
  ASSERT_TRUE(s.Start(start2).ok());
  v1::StatsRequest st2;
  st2.set_container_id("c2");
  EXPECT_EQ(s.Stats(st2)->pids_current(), 1u);
  v1::SignalRequest usr1;
  usr1.set_container_id("c1");
  usr1.set_signal(SIGUSR1);
  ASSERT_TRUE(s.Signal(usr1).ok());
  for (int i = 0; i < 3000 && Slurp(out1) == "ready\n"; ++i) usleep(10000);
  ASSERT_EQ(Slurp(out1), "ready\nreaped 1\n");
  // The new c2 still counts its init, and its limit still holds: its init
  // and the forker are 2 of its 6.
  EXPECT_EQ(s.Stats(st2)->pids_current(), 1u);
  EXPECT_EQ(Run(s, "c2", kForker), "4 11\n");
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
}

// A later container's init leads its own process group and session (its
// tid is its pgid and sid), and no one inside reaps it: once the container
// is deleted its id is free again. (a66e548 kept such an id taken for good:
// the group-id check came before the stale entry was dropped.)
TEST_F(ContainersTest, ADeletedContainersInitGivesItsIdBack) {
  ControlServer& s = Make("exec sleep 1000");
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  const std::set<int> p2 = RunThenDelete(s, Second("exec sleep 1000", TempDir(), TempFile()), 1);
  ASSERT_EQ(p2.size(), 1u);
  const int init2 = *p2.begin();
  // The deleted init's last reference goes when its host thread ends.
  int got = -1;
  for (int i = 0; i < 1000 && got != init2; ++i, usleep(10000)) {
    absl::MutexLock l(&kernel_->mu());
    got = kernel_->AllocateTidAt(init2);
  }
  EXPECT_EQ(got, init2) << "pid " << init2 << " of a deleted container's init stays taken";
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
}

TEST_F(ContainersTest, BadRequestsNameWhatIsWrong) {
  ControlServer& s = Make("exec sleep 1000");
  std::string data = TempDir();
  auto req = Second("true", data, TempFile());
  for (const char* id : {"", ".", "..", "a/b", "../c1"}) {
    auto r = req;
    r.set_container_id(id);
    absl::Status st = s.CreateContainer(r).status();
    EXPECT_TRUE(absl::IsInvalidArgument(st)) << id << ": " << st;
  }
  auto r = req;
  r.set_root("relative/root");
  EXPECT_TRUE(absl::IsInvalidArgument(s.CreateContainer(r).status()));
  r = req;
  r.set_root("/nonexistent/seedvisor/root");
  absl::Status st = s.CreateContainer(r).status();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("/nonexistent/seedvisor/root"), std::string::npos) << st;
  r = req;
  r.set_container_id("c3");
  r.mutable_mounts(0)->set_destination("/x/../../etc");
  EXPECT_TRUE(absl::IsInvalidArgument(s.CreateContainer(r).status()));
  r = req;
  r.clear_args();
  EXPECT_TRUE(absl::IsInvalidArgument(s.CreateContainer(r).status()));
  r = req;
  r.set_container_id("c1");
  EXPECT_TRUE(absl::IsAlreadyExists(s.CreateContainer(r).status()));
  v1::StateRequest unknown;
  unknown.set_container_id("c9");
  EXPECT_TRUE(absl::IsNotFound(s.State(unknown).status()));
}

}  // namespace
}  // namespace seedvisor::control
