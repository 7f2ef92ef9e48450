// The task service over ttrpc, without a sandbox: routing, status codes for
// unknown ids and methods, malformed input, Connect and Shutdown, and a
// Create whose sandbox cannot start.
#include "shim/task_service.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "absl/synchronization/notification.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"
#include "shim/reaper.h"
#include "shim/ttrpc/client.h"
#include "shim/ttrpc/frame.h"
#include "shim/ttrpc/socket.h"
#include "shim/ttrpc/ttrpc.pb.h"
#include "test/util/temp_dir.h"

namespace seedvisor::shim {
namespace {

constexpr char kTask[] = "containerd.task.v2.Task";

class TaskServiceTest : public testing::Test {
 protected:
  void SetUp() override {
    Reaper::Get().Start();
    SandboxConfig cfg;
    cfg.seedsc = "/bin/false";  // every `seedsc create` fails
    cfg.root = "/nonexistent-seedsc-root";
    svc_ = std::make_unique<TaskService>(&publisher_, cfg, [this] { shutdowns_++; });
    svc_->Register(&server_);
    server_.set_check_peer_uid(false);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    server_.ServeConnection(sv[0]);
    raw_fd_ = sv[1];
    int sv2[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv2), 0);
    server_.ServeConnection(sv2[0]);
    client_ = std::make_unique<ttrpc::Client>(sv2[1]);
  }
  void TearDown() override { close(raw_fd_); }

  absl::Status Call(const std::string& method, const google::protobuf::MessageLite& req) {
    google::protobuf::Empty ignored;
    // Responses are parsed leniently: only the status matters here.
    absl::StatusOr<std::string> r = client_->CallRaw(kTask, method, req.SerializeAsString());
    return r.status();
  }

  Publisher publisher_{"", "default"};  // events dropped
  std::atomic<int> shutdowns_{0};
  std::unique_ptr<TaskService> svc_;
  ttrpc::Server server_;
  std::unique_ptr<ttrpc::Client> client_;
  int raw_fd_ = -1;
};

TEST_F(TaskServiceTest, UnknownIdIsNotFoundEverywhere) {
  task::StateRequest state;
  state.set_id("nope");
  EXPECT_EQ(Call("State", state).code(), absl::StatusCode::kNotFound);
  task::StartRequest start;
  start.set_id("nope");
  EXPECT_EQ(Call("Start", start).code(), absl::StatusCode::kNotFound);
  task::DeleteRequest del;
  del.set_id("nope");
  EXPECT_EQ(Call("Delete", del).code(), absl::StatusCode::kNotFound);
  task::KillRequest kill;
  kill.set_id("nope");
  kill.set_signal(9);
  EXPECT_EQ(Call("Kill", kill).code(), absl::StatusCode::kNotFound);
  task::WaitRequest wait;
  wait.set_id("nope");
  EXPECT_EQ(Call("Wait", wait).code(), absl::StatusCode::kNotFound);
  task::PidsRequest pids;
  pids.set_id("nope");
  EXPECT_EQ(Call("Pids", pids).code(), absl::StatusCode::kNotFound);
  task::ExecProcessRequest exec;
  exec.set_id("nope");
  exec.set_exec_id("e");
  exec.mutable_spec()->set_value(R"({"args":["true"]})");
  EXPECT_EQ(Call("Exec", exec).code(), absl::StatusCode::kNotFound);
  for (const char* m : {"Stats", "Pause", "Resume"}) {
    task::PauseRequest r;  // {id=1} in all three
    r.set_id("nope");
    EXPECT_EQ(Call(m, r).code(), absl::StatusCode::kNotFound) << m;
  }
  task::CloseIORequest cio;
  cio.set_id("nope");
  EXPECT_EQ(Call("CloseIO", cio).code(), absl::StatusCode::kNotFound);
  task::ResizePtyRequest rp;
  rp.set_id("nope");
  EXPECT_EQ(Call("ResizePty", rp).code(), absl::StatusCode::kNotFound);
  task::UpdateTaskRequest up;
  up.set_id("nope");
  EXPECT_EQ(Call("Update", up).code(), absl::StatusCode::kNotFound);
}

TEST_F(TaskServiceTest, UnimplementedMethodsAndServices) {
  task::CheckpointTaskRequest cp;
  absl::Status s = Call("Checkpoint", cp);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(s.message(), "method Checkpoint");
  s = client_->CallRaw("containerd.task.v3.Task", "State", "").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(s.message(), "service containerd.task.v3.Task");
}

TEST_F(TaskServiceTest, MalformedInputThenStillServing) {
  // Garbage payload for State (field 1 claims 100 bytes that are not there).
  EXPECT_EQ(client_->CallRaw(kTask, "State", "\x0a\x64").status().code(),
            absl::StatusCode::kInvalidArgument);
  // A frame that is not a Request at all, on the raw connection.
  ASSERT_TRUE(ttrpc::WriteAll(raw_fd_, ttrpc::EncodeFrame(1, ttrpc::kTypeRequest, "\xff")).ok());
  ttrpc::FrameDecoder dec;
  ttrpc::Frame f;
  char buf[512];
  while (dec.Next(&f) != ttrpc::FrameDecoder::kFrame) {
    ssize_t n = read(raw_fd_, buf, sizeof(buf));
    ASSERT_GT(n, 0);
    dec.Feed(buf, static_cast<size_t>(n));
  }
  ttrpc::Response resp;
  ASSERT_TRUE(resp.ParseFromString(f.data));
  EXPECT_EQ(resp.status().code(), 3);
  // The service still answers.
  task::ConnectRequest c;
  c.set_id("x");
  absl::StatusOr<std::string> out = client_->CallRaw(kTask, "Connect", c.SerializeAsString());
  ASSERT_TRUE(out.ok()) << out.status();
  task::ConnectResponse cr;
  ASSERT_TRUE(cr.ParseFromString(*out));
  EXPECT_EQ(cr.shim_pid(), static_cast<uint32_t>(getpid()));
  EXPECT_EQ(cr.task_pid(), 0u);
}

TEST_F(TaskServiceTest, CreateFailureLeavesNoTask) {
  const testutil::ScopedTempDir scratch("shim_test_bundle");
  const std::string bundle = scratch.path();
  ASSERT_EQ(mkdir((bundle + "/rootfs").c_str(), 0711), 0);
  task::CreateTaskRequest create;
  create.set_id("c1");
  create.set_bundle(bundle);
  absl::Status s = Call("Create", create);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("seedsc create failed"), std::string::npos) << s;
  task::StateRequest state;
  state.set_id("c1");
  EXPECT_EQ(Call("State", state).code(), absl::StatusCode::kNotFound);
  // Shutdown with no task left exits the shim.
  task::ShutdownRequest sd;
  EXPECT_TRUE(Call("Shutdown", sd).ok());
  // on_shutdown runs after the reply is written: waited for (10 s at most,
  // a loaded host may not run that thread within a fixed moment).
  for (int i = 0; i < 10000 && shutdowns_.load() == 0; ++i) usleep(1000);
  EXPECT_EQ(shutdowns_.load(), 1);
  system(("rm -rf " + bundle).c_str());
}

// A stand-in for seedsc: `create` leaves a process holding the
// container's control socket (it accepts and closes every connection) and
// names it in the pid file; `delete --force` ends it. A create waits
// while <root>/../latch-<id> exists (saying so in <root>/../waiting-<id>),
// and one of an id "fail..." fails.
constexpr char kFakeSeedsc[] = R"SH(#!/bin/bash
root=${1#--root=}
if [[ $2 == create ]]; then
  pidfile=$6 id=$7
  [[ -e ${root%/*}/latch-$id ]] && : >"${root%/*}/waiting-$id"
  while [[ -e ${root%/*}/latch-$id ]]; do sleep 0.05; done
  [[ $id == fail* ]] && exit 1
  mkdir -p "$root/$id"
  python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
pid = os.fork()
if pid:
    for path in sys.argv[2:]:
        open(path, "w").write(str(pid))
    os._exit(0)
os.setsid()
for fd in (0, 1, 2):
    os.dup2(os.open("/dev/null", os.O_RDWR), fd)
while True:
    s.accept()[0].close()
' "$root/$id/control.sock" "$pidfile" "$root/$id/holder.pid"
elif [[ $2 == delete ]]; then
  id=$4
  [[ -d $root/$id ]] && kill -9 "$(cat "$root/$id/holder.pid" 2>/dev/null)" 2>/dev/null
  rm -rf "${root:?}/$id"
fi
exit 0
)SH";

// After a Shutdown that found containers left (refused, as the runc shim
// does), the Delete of the last container ends the shim, once
// kLastDeleteGrace has passed without containerd's own Shutdown; without
// a refused Shutdown, a last Delete leaves that to containerd. A Create
// begun within the grace keeps the shim, however long it takes.
TEST(TaskServiceExitTest, LastDeleteAfterARefusedShutdownEndsTheShim) {
  Reaper::Get().Start();
  // Short: the fake seedsc's control sockets live in it (sun_path).
  const testutil::ScopedTempDir scratch = testutil::ScopedTempDir::Short("shim_exit_test");
  const std::string& tmp = scratch.path();
  const std::string fake = tmp + "/seedsc";
  std::ofstream(fake) << kFakeSeedsc;
  ASSERT_EQ(chmod(fake.c_str(), 0755), 0);
  Publisher publisher("", "default");
  SandboxConfig cfg;
  cfg.seedsc = fake;
  cfg.root = tmp + "/root";
  std::atomic<int> exits{0};
  TaskService svc(&publisher, cfg, [&exits] { exits++; });
  auto create = [&](const std::string& id) {
    const std::string bundle = tmp + "/" + id;
    EXPECT_EQ(mkdir(bundle.c_str(), 0700), 0);
    EXPECT_EQ(mkdir((bundle + "/rootfs").c_str(), 0700), 0);
    task::CreateTaskRequest r;
    r.set_id(id);
    r.set_bundle(bundle);
    return svc.Create(r).status();
  };
  auto del = [&](const std::string& id) {
    task::DeleteRequest r;
    r.set_id(id);
    EXPECT_TRUE(svc.Delete(r).ok()) << id;
  };
  // Nothing more happens in a grace and a second: the exits so far.
  const absl::Duration wait = TaskService::kLastDeleteGrace + absl::Seconds(1);
  auto exits_after_the_grace = [&] {
    absl::SleepFor(wait);
    return exits.load();
  };
  // An exit due: the exits once there are `n` (or 30 s have passed).
  auto exits_once = [&](int n) {
    for (absl::Time end = absl::Now() + absl::Seconds(30); exits < n && absl::Now() < end;) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    return exits.load();
  };
  // No Shutdown before the last Delete: the shim stays for containerd's.
  EXPECT_TRUE(create("a").ok());
  del("a");
  EXPECT_EQ(exits_after_the_grace(), 0);
  // A Shutdown while "c" is left; "b"'s Delete leaves "c"; "c"'s ends it.
  EXPECT_TRUE(create("b").ok());
  EXPECT_TRUE(create("c").ok());
  task::ShutdownRequest sd;
  sd.set_id("b");
  bool exit = true;
  ASSERT_TRUE(svc.Shutdown(sd, &exit).ok());
  EXPECT_FALSE(exit);
  del("b");
  EXPECT_EQ(exits_after_the_grace(), 0);
  del("c");
  EXPECT_EQ(exits_once(1), 1);
  // A Create begun within the grace and still under way when it ends (its
  // stand-in waits for a latch lifted only then) keeps the shim.
  EXPECT_TRUE(create("d").ok());
  del("d");
  const std::string latch = tmp + "/latch-e";
  std::ofstream(latch) << "";
  absl::Status made_e;
  std::thread create_e([&] { made_e = create("e"); });
  struct stat st;
  for (int i = 0; i < 3000 && stat((tmp + "/waiting-e").c_str(), &st) != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(stat((tmp + "/waiting-e").c_str(), &st), 0) << "the Create of e never began";
  EXPECT_EQ(exits_after_the_grace(), 1);
  ASSERT_EQ(unlink(latch.c_str()), 0);
  create_e.join();
  EXPECT_TRUE(made_e.ok()) << made_e;
  EXPECT_EQ(exits_after_the_grace(), 1);
  del("e");
  EXPECT_EQ(exits_once(2), 2);
  // One that fails after the last Delete: the exit is due again.
  EXPECT_TRUE(create("f").ok());
  del("f");
  EXPECT_FALSE(create("fail").ok());
  EXPECT_EQ(exits_once(3), 3);
  EXPECT_EQ(exits_after_the_grace(), 3);
  system(("rm -rf " + tmp).c_str());
}

// containerd gives up on a Create that waits behind another container's
// (a pod's: one shim) and cleans up with Delete, then Shutdown. That Delete
// is answered at once, NotFound, and the Create it gave up on begins
// nothing when its turn comes; the Shutdown, with the other Create still
// under way, is refused. Before, the Delete waited for the other Create
// (containerd's 5 s cleanup timeout ran out first, its Shutdown then went
// out or not by chance) and the Create given up on ran after it.
TEST(TaskServiceExitTest, DeleteOfACreateGivenUpAnswersAtOnce) {
  Reaper::Get().Start();
  // Short: the fake seedsc's control sockets live in it (sun_path).
  const testutil::ScopedTempDir scratch = testutil::ScopedTempDir::Short("shim_exit_test");
  const std::string& tmp = scratch.path();
  const std::string fake = tmp + "/seedsc";
  std::ofstream(fake) << kFakeSeedsc;
  ASSERT_EQ(chmod(fake.c_str(), 0755), 0);
  Publisher publisher("", "default");
  SandboxConfig cfg;
  cfg.seedsc = fake;
  cfg.root = tmp + "/root";
  std::atomic<int> exits{0};
  TaskService svc(&publisher, cfg, [&exits] { exits++; });
  auto create = [&](const std::string& id) {
    const std::string bundle = tmp + "/" + id;
    mkdir(bundle.c_str(), 0700);
    mkdir((bundle + "/rootfs").c_str(), 0700);
    task::CreateTaskRequest r;
    r.set_id(id);
    r.set_bundle(bundle);
    return svc.Create(r).status();
  };
  auto del = [&](const std::string& id) {
    task::DeleteRequest r;
    r.set_id(id);
    return svc.Delete(r).status();
  };
  const std::string latch = tmp + "/latch-held";
  std::ofstream(latch) << "";
  // Lifted after 30 s at the latest: a Delete that waits for the held
  // Create fails the test (it takes that long) instead of hanging it. Not
  // sooner: the held Create's stand-in must start and the other Create
  // queue before the lift, however loaded the host.
  absl::Notification lifted;
  std::thread lift([&] {
    lifted.WaitForNotificationWithTimeout(absl::Seconds(30));
    unlink(latch.c_str());
  });
  absl::Status held, given_up;
  std::thread create_held([&] { held = create("held"); });
  struct stat st;
  for (int i = 0; i < 3000 && stat((tmp + "/waiting-held").c_str(), &st) != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(stat((tmp + "/waiting-held").c_str(), &st), 0) << "the Create of held never began";
  std::thread create_given_up([&] { given_up = create("given-up"); });
  // Until it waits for the held one (queued: a Delete now reaches it).
  for (int i = 0; i < 3000 && !svc.CreateQueued("given-up"); ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_TRUE(svc.CreateQueued("given-up")) << "the Create of given-up never queued";
  absl::Time t = absl::Now();
  EXPECT_EQ(del("given-up").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(del("nosuch").code(), absl::StatusCode::kNotFound);
  // Answered in-process, without seedsc: far below the 30 s that waiting
  // for the held Create would take, at any load.
  EXPECT_LT(absl::Now() - t, absl::Seconds(10)) << "the Deletes waited for the held Create";
  task::ShutdownRequest sd;
  sd.set_id("given-up");
  bool exit = true;
  EXPECT_TRUE(svc.Shutdown(sd, &exit).ok());
  EXPECT_FALSE(exit) << "Shutdown would cut the held Create off";
  unlink(latch.c_str());
  lifted.Notify();
  create_held.join();
  create_given_up.join();
  lift.join();
  EXPECT_TRUE(held.ok()) << held;
  EXPECT_EQ(given_up.code(), absl::StatusCode::kFailedPrecondition) << given_up;
  EXPECT_NE(stat((cfg.root + "/given-up").c_str(), &st), 0) << "seedsc create ran for it";
  task::StateRequest state;
  state.set_id("given-up");
  EXPECT_EQ(svc.State(state).status().code(), absl::StatusCode::kNotFound);
  // A Create of that id later is a new one; the held container is there.
  EXPECT_TRUE(create("given-up").ok());
  EXPECT_TRUE(del("given-up").ok());
  state.set_id("held");
  EXPECT_TRUE(svc.State(state).ok());
  // The refused Shutdown makes the Delete of the last container end it.
  EXPECT_TRUE(del("held").ok());
  for (absl::Time end = absl::Now() + absl::Seconds(30); exits == 0 && absl::Now() < end;) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(exits.load(), 1);
  system(("rm -rf " + tmp).c_str());
}

}  // namespace
}  // namespace seedvisor::shim
