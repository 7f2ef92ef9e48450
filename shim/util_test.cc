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

TEST(UpdateResourcesTest, LinuxResourcesJsonAny) {
  google::protobuf::Any any;
  any.set_type_url(kLinuxResourcesTypeUrl);
  any.set_value(R"({"memory":{"limit":33554432},"cpu":{"shares":256},"pids":{"limit":20}})");
  absl::StatusOr<oci::Resources> r = ResourcesFromAny(any);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->memory_limit, 33554432);
  EXPECT_EQ(r->cpu_shares, 256u);
  EXPECT_EQ(r->pids_limit, 20);

  any.set_value(R"({"memory":{"limit":true}})");
  EXPECT_EQ(ResourcesFromAny(any).status().message(),
            "update: resources: memory.limit: must be an integer, not boolean");
  any.set_type_url("type.googleapis.com/foo.Bar");
  EXPECT_TRUE(absl::IsInvalidArgument(ResourcesFromAny(any).status()));
}

TEST(CgroupOfControllerTest, ProcCgroupLines) {
  const std::string text =
      "12:pids:/default/c1\n4:memory:/default/c1\n2:cpu,cpuacct:/x/y\n0::/\n";
  EXPECT_EQ(CgroupOfController(text, "memory"), "/default/c1");
  EXPECT_EQ(CgroupOfController(text, "cpuacct"), "/x/y");
  EXPECT_EQ(CgroupOfController(text, "cpuset"), "");
  EXPECT_EQ(CgroupOfController("", "memory"), "");
}

}  // namespace
}  // namespace seedvisor::shim
