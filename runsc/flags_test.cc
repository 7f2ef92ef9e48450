#include "runsc/flags.h"

#include "gtest/gtest.h"

namespace seedvisor::runsc {
namespace {

TEST(FlagSet, ParsesForms) {
  FlagSet fs("");
  std::string root, platform = "ptrace";
  bool debug = false;
  fs.String("root", &root, "");
  fs.Choice("platform", &platform, {"ptrace", "systrap"}, "");
  fs.Bool("debug", &debug, "");
  auto rest = fs.Parse({"--root", "/r", "-platform=systrap", "--debug", "do", "--x"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(root, "/r");
  EXPECT_EQ(platform, "systrap");
  EXPECT_TRUE(debug);
  EXPECT_EQ(*rest, (std::vector<std::string>{"do", "--x"}));
}

TEST(FlagSet, DoubleDashEndsFlags) {
  FlagSet fs("do");
  bool q = false;
  fs.Bool("quiet", &q, "");
  auto rest = fs.Parse({"--", "--quiet"});
  ASSERT_TRUE(rest.ok());
  EXPECT_FALSE(q);
  EXPECT_EQ(*rest, (std::vector<std::string>{"--quiet"}));
}

TEST(FlagSet, UnknownFlagNamesIt) {
  FlagSet fs("do");
  auto rest = fs.Parse({"--bogus=1"});
  ASSERT_FALSE(rest.ok());
  EXPECT_NE(rest.status().message().find("--bogus"), std::string::npos);
}

TEST(FlagSet, BadChoiceNamesFlagAndValue) {
  FlagSet fs("");
  std::string p = "ptrace";
  fs.Choice("platform", &p, {"ptrace"}, "");
  auto rest = fs.Parse({"--platform=kvmx"});
  ASSERT_FALSE(rest.ok());
  EXPECT_NE(rest.status().message().find("--platform"), std::string::npos);
  EXPECT_NE(rest.status().message().find("kvmx"), std::string::npos);
  EXPECT_EQ(p, "ptrace");
}

TEST(FlagSet, BadBoolAndMissingValue) {
  FlagSet fs("");
  bool d = false;
  std::string r;
  fs.Bool("debug", &d, "");
  fs.String("root", &r, "");
  EXPECT_FALSE(fs.Parse({"--debug=maybe"}).ok());
  EXPECT_FALSE(fs.Parse({"--root"}).ok());
}

}  // namespace
}  // namespace seedvisor::runsc
