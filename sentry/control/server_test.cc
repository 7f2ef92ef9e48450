// ControlServer against a real kernel over the host's root (ptrace
// platform): the lifecycle rules, stdio paths, exit statuses, pause.
#include "sentry/control/server.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace seedvisor::control {
namespace {

std::string Slurp(const std::string& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
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
  std::string TempFile() {
    char t[] = "/tmp/server_test.XXXXXX";
    int fd = mkstemp(t);
    close(fd);
    return t;
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

  // The init shows up as pid 1, named "sleep" once its shell has exec'd.
  absl::StatusOr<v1::ProcessesResponse> ps;
  for (int i = 0; i < 200; ++i) {
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
  ControlServer& s = Make("trap 'exit 7' TERM; while :; do sleep 0.05; done");
  ASSERT_TRUE(s.Start(StartTo(TempFile())).ok());
  usleep(200000);  // the trap is set
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
  ASSERT_TRUE(s.Pause({}).ok());
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
  usleep(100000);
  EXPECT_NE(Slurp(counter), frozen) << "a resumed sandbox did not run";
  EXPECT_TRUE(absl::IsFailedPrecondition(s.Resume({}).status()));
  ASSERT_TRUE(s.Shutdown({}).ok());
  s.WaitShutdown();
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

}  // namespace
}  // namespace seedvisor::control
