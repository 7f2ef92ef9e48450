#include "shim/util.h"

#include "gtest/gtest.h"
#include "shim/events.h"
#include "shim/proto/events.pb.h"

namespace seedvisor::shim {
namespace {

TEST(ExecSpecTest, OciProcessJson) {
  auto e = ExecFromOciProcess(R"({"terminal":false,"user":{"uid":1000,"gid":100,
      "additionalGids":[5,6]},"args":["sh","-c","echo hi"],"env":["PATH=/bin","A=b"],
      "cwd":"/tmp","noNewPrivileges":true,
      "capabilities":{"effective":["CAP_KILL"]}})");
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->args_size(), 3);
  EXPECT_EQ(e->args(2), "echo hi");
  EXPECT_EQ(e->env_size(), 2);
  EXPECT_EQ(e->cwd(), "/tmp");
  EXPECT_EQ(e->user().uid(), 1000u);
  EXPECT_EQ(e->user().gid(), 100u);
  EXPECT_EQ(e->user().additional_gids_size(), 2);
  EXPECT_TRUE(e->no_new_privileges());
  ASSERT_EQ(e->capabilities_size(), 1);
}

TEST(ExecSpecTest, Errors) {
  EXPECT_EQ(ExecFromOciProcess("{").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ExecFromOciProcess("{}").status().message(), "exec spec: args: must not be empty");
  EXPECT_EQ(ExecFromOciProcess(R"({"args":"sh"})").status().message(),
            "exec spec: args: not an array");
}

TEST(EventsTest, TypeUrlHasNoGooglePrefix) {
  containerd::events::TaskExit e;
  EXPECT_EQ(EventTypeUrl(e), "containerd.events.TaskExit");
}

TEST(TimestampTest, FromNanos) {
  auto t = TimestampFromUnixNanos(1700000000123456789);
  EXPECT_EQ(t.seconds(), 1700000000);
  EXPECT_EQ(t.nanos(), 123456789);
}

}  // namespace
}  // namespace seedvisor::shim
