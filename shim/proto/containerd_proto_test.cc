#include <string>

#include "gtest/gtest.h"
#include "shim/proto/events.pb.h"
#include "shim/proto/shim.pb.h"

namespace {

std::string Unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(h.substr(i, 2), nullptr, 16)));
  }
  return out;
}

TEST(ContainerdProtoTest, DeleteResponseFromTheRuncShim) {
  // `containerd-shim-runc-v2 delete` wrote these bytes (reference §1.5).
  containerd::task::v2::DeleteResponse r;
  ASSERT_TRUE(r.ParseFromString(Unhex("088ca7011089011a0c088b97aed80610b0bba0a403")));
  EXPECT_EQ(r.pid(), 21388u);
  EXPECT_EQ(r.exit_status(), 137u);
  EXPECT_GT(r.exited_at().seconds(), 1700000000);
}

TEST(ContainerdProtoTest, TaskExitFieldNumbers) {
  containerd::events::TaskExit e;
  e.set_container_id("c");
  e.set_id("e");
  e.set_pid(1);
  e.set_exit_status(3);
  e.mutable_exited_at()->set_seconds(1);
  EXPECT_EQ(e.SerializeAsString(), Unhex("0a0163120165180120032a020801"));
}

TEST(ContainerdProtoTest, StateResponseStatusIsField4) {
  containerd::task::v2::StateResponse s;
  s.set_status(containerd::v1::types::STOPPED);
  s.set_exit_status(3);
  s.set_exec_id("x");
  EXPECT_EQ(s.SerializeAsString(), Unhex("200348035a0178"));
}

}  // namespace
