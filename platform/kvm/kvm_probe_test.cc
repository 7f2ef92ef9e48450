// The host check behind --platform=kvm: a missing or non-KVM device fails
// with one line that names it; a usable one starts the platform.
#include "platform/kvm/kvm_probe.h"

#include <string>

#include "gtest/gtest.h"
#include "platform/kvm/kvm_platform.h"
#include "platform/platform.h"

namespace seedvisor::platform::kvm {
namespace {

void ExpectOneLineNaming(const absl::Status& s, const std::string& what) {
  ASSERT_FALSE(s.ok());
  const std::string m(s.message());
  EXPECT_EQ(m.rfind("kvm: ", 0), 0u) << m;
  EXPECT_NE(m.find(what), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST(ProbeKvm, MissingDeviceSaysSo) {
  auto h = ProbeKvm("/nonexistent/kvm");
  ExpectOneLineNaming(h.status(), "/nonexistent/kvm: No such file or directory");
  ExpectOneLineNaming(NewKvmPlatform("/nonexistent/kvm").status(), "No such file or directory");
}

TEST(ProbeKvm, NonKvmDeviceSaysSo) {
  auto h = ProbeKvm("/dev/null");
  ExpectOneLineNaming(h.status(), "/dev/null: not a KVM device");
}

TEST(ProbeKvm, HostKvm) {
  auto h = ProbeKvm();
  if (!h.ok()) GTEST_SKIP() << h.status().message();
  EXPECT_EQ(h->api_version, 12);
  EXPECT_GT(h->nr_memslots, 1);
  EXPECT_NE(h->flavour, "");
}

TEST(NewPlatform, KvmStartsWhereKvmIsUsable) {
  auto h = ProbeKvm();
  auto p = NewPlatform("kvm");
  if (!h.ok()) {
    ExpectOneLineNaming(p.status(), "/dev/kvm");
    GTEST_SKIP() << h.status().message();
  }
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->name(), "kvm");
}

}  // namespace
}  // namespace seedvisor::platform::kvm
