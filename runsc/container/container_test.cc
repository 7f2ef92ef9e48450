#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>


#include "gtest/gtest.h"
#include "runsc/container/test_files.h"
#include "runsc/container/hooks.h"
#include "runsc/container/state.h"

namespace seedvisor::container {
namespace {

using testing_files::Slurp;

// A fresh scratch directory for one test.
std::string TempDir() { return testing_files::TempDir("container_test"); }

TEST(StateTest, Ids) {
  EXPECT_TRUE(ValidateId("abc-1.2_x").ok());
  EXPECT_FALSE(ValidateId("").ok());
  EXPECT_FALSE(ValidateId("..").ok());
  EXPECT_FALSE(ValidateId("a/b").ok());
  EXPECT_FALSE(ValidateId("a b").ok());
}

TEST(StateTest, SaveLoadListRemove) {
  std::string root = TempDir() + "/root";
  ASSERT_TRUE(CreateStateDir(root, "c1").ok());
  absl::Status again = CreateStateDir(root, "c1");
  EXPECT_TRUE(absl::IsAlreadyExists(again));
  EXPECT_EQ(again.message(), "container with id \"c1\" already exists");
  State st;
  st.id = "c1";
  st.bundle = "/b";
  st.set_sandbox({.pid = 42, .start_time = 1234567, .boot_id = "b-1"});
  st.annotations["k"] = "v";
  st.control_address = "/x.sock";
  ASSERT_TRUE(SaveState(root, st).ok());
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
  std::string root = TempDir() + "/root";
  ASSERT_TRUE(CreateStateDir(root, "old").ok());
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

TEST(HooksTest, RunsWithStateOnStdinAndReportsFailures) {
  std::string dir = TempDir();
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

}  // namespace
}  // namespace seedvisor::container
