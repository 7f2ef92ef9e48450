#include "runsc/flags.h"

#include <utility>

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

// Every form runsc (Go's flag package) accepts, and where it stops.
TEST(FlagSet, AcceptsEveryFormRunscDoes) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"--root=/r", "--debug", "list"},
                                             {"--root", "/r", "-debug", "list"},
                                             {"-root=/r", "--debug=true", "list"},
                                             {"-root", "/r", "-debug=1", "list"}}) {
    FlagSet fs("");
    std::string root;
    bool debug = false;
    fs.String("root", &root, "");
    fs.Bool("debug", &debug, "");
    auto rest = fs.Parse(args);
    ASSERT_TRUE(rest.ok()) << args[0] << ": " << rest.status();
    EXPECT_EQ(root, "/r") << args[0];
    EXPECT_TRUE(debug) << args[0];
    EXPECT_EQ(*rest, std::vector<std::string>{"list"}) << args[0];
  }
  // strconv.ParseBool's spellings, and nothing else (-1: refused).
  const std::pair<const char*, int> kSpellings[] = {
      {"1", 1},  {"t", 1},     {"T", 1},     {"TRUE", 1}, {"true", 1}, {"True", 1},
      {"0", 0},  {"f", 0},     {"F", 0},     {"FALSE", 0}, {"false", 0}, {"False", 0},
      {"yes", -1}, {"no", -1}, {"tRUE", -1}, {"on", -1},  {"", -1}};
  for (const auto& [spelling, want] : kSpellings) {
    for (bool start : {false, true}) {
      FlagSet fs("");
      bool debug = start;
      fs.Bool("debug", &debug, "");
      const bool ok = fs.Parse({std::string(start ? "-debug=" : "--debug=") + spelling}).ok();
      EXPECT_EQ(ok, want >= 0) << spelling;
      EXPECT_EQ(debug, want >= 0 ? want == 1 : start) << spelling;
    }
  }
  // A bool never takes the next argument; flags end at the first
  // positional argument, so the command's own flags stay its own.
  FlagSet fs("exec");
  bool debug = false;
  fs.Bool("debug", &debug, "");
  auto rest = fs.Parse({"--debug", "false", "--debug=0"});
  ASSERT_TRUE(rest.ok());
  EXPECT_TRUE(debug);
  EXPECT_EQ(*rest, (std::vector<std::string>{"false", "--debug=0"}));
  rest = fs.Parse({"id", "ls", "-l"});
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, (std::vector<std::string>{"id", "ls", "-l"}));
  rest = fs.Parse({"-", "x"});  // "-" alone is an argument (stdin), not a flag
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(*rest, (std::vector<std::string>{"-", "x"}));
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

// runc's one-letter aliases: `seedsc run -b DIR ID`.
TEST(FlagSet, ShortAliases) {
  FlagSet fs("run");
  std::string bundle;
  bool detach = false;
  fs.String("bundle", &bundle, "the bundle");
  fs.Bool("detach", &detach, "");
  fs.Alias("b", "bundle");
  fs.Alias("d", "detach");
  auto rest = fs.Parse({"-b", "/bundle", "-d", "id"});
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(bundle, "/bundle");
  EXPECT_TRUE(detach);
  EXPECT_EQ(*rest, (std::vector<std::string>{"id"}));
  ASSERT_TRUE(fs.Parse({"-b=/other", "id"}).ok());
  EXPECT_EQ(bundle, "/other");
  EXPECT_FALSE(fs.Parse({"-x", "id"}).ok());
  EXPECT_NE(fs.Usage().find("  -b, --bundle=VALUE\n        the bundle"), std::string::npos)
      << fs.Usage();
}

// `seedsc help run` runs `run --help`: the command's flags, not the general help.
TEST(FlagSet, HelpIsRequestedNotAnError) {
  for (const char* h : {"--help", "-help", "-h"}) {
    FlagSet fs("run");
    std::string bundle;
    fs.String("bundle", &bundle, "");
    auto rest = fs.Parse({h});
    ASSERT_TRUE(rest.ok()) << h;
    EXPECT_TRUE(fs.help_requested()) << h;
  }
  FlagSet fs("run");
  ASSERT_TRUE(fs.Parse({"id"}).ok());
  EXPECT_FALSE(fs.help_requested());
}

}  // namespace
}  // namespace seedvisor::runsc
