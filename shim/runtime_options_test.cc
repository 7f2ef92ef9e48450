#include "shim/runtime_options.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shim/proto/runtime_options.pb.h"
#include "test/util/temp_dir.h"

namespace seedvisor::shim {
namespace {

using ::testing::ElementsAre;

google::protobuf::Any OptionsFor(const std::string& config_path,
                                 const std::string& type = "runtimeoptions.v1.Options") {
  runtimeoptions::v1::Options o;
  o.set_type_url("io.containerd.seedsc.v1.options");
  o.set_config_path(config_path);
  google::protobuf::Any any;
  any.set_type_url(type);
  any.set_value(o.SerializeAsString());
  return any;
}

TEST(ParseSeedscToml, FlagsOfTheSeedscConfigTable) {
  auto f = ParseSeedscToml(
      "# seedsc for pods\n[seedsc_config]\n  platform = \"kvm\"  # fast\n"
      "network=\"sandbox\"\n\n  net-raw = true\n  debug = false\n  x_y = -3\n",
      "s.toml");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(*f, ElementsAre("--platform=kvm", "--network=sandbox", "--net-raw=true",
                              "--debug=false", "--x_y=-3"));
}

TEST(ParseSeedscToml, ErrorsNameFileLineAndWhat) {
  auto err = [](absl::string_view text) {
    auto f = ParseSeedscToml(text, "/etc/s.toml");
    return f.ok() ? std::string("ok") : std::string(f.status().message());
  };
  EXPECT_EQ(err("platform = \"kvm\"\n"),
            "/etc/s.toml:1: key platform outside [seedsc_config]");
  EXPECT_EQ(err("[seedsc_config]\n[runsc_config]\n"),
            "/etc/s.toml:2: unknown table [runsc_config] (seedsc's flags go in [seedsc_config])");
  EXPECT_EQ(err("[seedsc_config]\nplatform\n"), "/etc/s.toml:2: expected key = value");
  EXPECT_EQ(err("[seedsc_config]\nplatform = kvm\n"),
            "/etc/s.toml:2: platform: the value must be a \"string\", true, false or an "
            "integer, not kvm");
  EXPECT_EQ(err("[seedsc_config]\n\"a b\" = 1\n"), "/etc/s.toml:2: \"\"a b\"\" is not a flag name");
  EXPECT_EQ(err("[seedsc_config]\nroot = \"a\\\"b\"\n"),
            "/etc/s.toml:2: root: the value must be a \"string\", true, false or an integer, "
            "not \"a\\\"b\"");
  EXPECT_EQ(err("[seedsc_config\n"), "/etc/s.toml:1: a table header is [name]");
}

TEST(FlagsFromRuntimeOptions, ReadsTheConfigPath) {
  const testutil::ScopedTempDir scratch("runtime_options_test");
  const std::string config = scratch.Path("seedsc.toml");
  std::ofstream(config) << "[seedsc_config]\nplatform = \"ptrace\"\n";
  auto f = FlagsFromRuntimeOptions(OptionsFor(config));
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_THAT(*f, ElementsAre("--platform=ptrace"));
  // A type URL with a prefix is the same type.
  f = FlagsFromRuntimeOptions(OptionsFor(config, "type.googleapis.com/runtimeoptions.v1.Options"));
  ASSERT_TRUE(f.ok()) << f.status();
}

TEST(FlagsFromRuntimeOptions, NoneOrBad) {
  auto none = FlagsFromRuntimeOptions(google::protobuf::Any());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto no_path = FlagsFromRuntimeOptions(OptionsFor(""));
  ASSERT_TRUE(no_path.ok());
  EXPECT_TRUE(no_path->empty());
  EXPECT_EQ(FlagsFromRuntimeOptions(OptionsFor("/nonexistent/seedsc.toml")).status().message(),
            "runtime options: ConfigPath /nonexistent/seedsc.toml: cannot be read");
  EXPECT_EQ(FlagsFromRuntimeOptions(OptionsFor("/x", "containerd.runc.v1.Options")).status().message(),
            "runtime options: type containerd.runc.v1.Options (seedsc takes runtimeoptions.v1.Options)");
  google::protobuf::Any junk;
  junk.set_type_url("runtimeoptions.v1.Options");
  junk.set_value("\xff\xff");
  EXPECT_EQ(FlagsFromRuntimeOptions(junk).status().message(),
            "runtime options: not a valid runtimeoptions.v1.Options");
}

}  // namespace
}  // namespace seedvisor::shim
