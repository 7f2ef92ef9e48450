#include "seedd/config.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace seedvisor::seedd {
namespace {

const std::set<std::string> kKnown = {"listen", "state-dir", "cgroup-pool", "node"};

std::string Write(const std::string& text) {
  static int n = 0;
  std::string p = absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp", "/config_test.",
                               getpid(), ".", n++, ".json");
  std::ofstream(p) << text;
  return p;
}

TEST(Config, FindsThePath) {
  EXPECT_EQ(ConfigPath({"--listen=x", "--config=/a.json"}), "/a.json");
  EXPECT_EQ(ConfigPath({"--config", "/b.json", "--listen=x"}), "/b.json");
  EXPECT_EQ(ConfigPath({"-config=/c.json"}), "/c.json");
  EXPECT_EQ(ConfigPath({"--listen=x"}), "");
  EXPECT_EQ(ConfigPath({"--", "--config=/d.json"}), "");
}

TEST(Config, ValuesBecomeFlagsAndSayWhereTheyCameFrom) {
  std::string p = Write(R"({"listen": "127.0.0.1:9", "cgroup-pool": 16, "node": ""})");
  absl::StatusOr<Config> c = ReadConfig(p, kKnown);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->Args(), (std::vector<std::string>{"--cgroup-pool=16", "--listen=127.0.0.1:9", "--node="}));
  EXPECT_EQ(c->Where("cgroup-pool", {"--listen=x"}, "16"), p + ": key \"cgroup-pool\" (16)");
  EXPECT_EQ(c->Where("listen", {"--listen=x"}, "x"), "--listen=x") << "the command line overrode it";
  EXPECT_EQ(c->Where("state-dir", {}, "/run/seedd"), "--state-dir=/run/seedd");
  EXPECT_TRUE(ReadConfig("", kKnown)->values.empty());
}

TEST(Config, ErrorsNameTheFileAndKey) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"{", "not valid JSON"},
      {"[1]", "JSON object"},
      {R"({"lisen": "x"})", "key \"lisen\": not a seedd flag (keys: cgroup-pool, listen, node, state-dir)"},
      {R"({"listen": ["x"]})", "key \"listen\": must be a string"},
      {R"({"cgroup-pool": 1.5})", "key \"cgroup-pool\": must be a string, an integer"},
      {R"({"config": "x"})", "key \"config\""},
  };
  for (const Case& k : cases) {
    std::string p = Write(k.text);
    absl::StatusOr<Config> c = ReadConfig(p, kKnown);
    ASSERT_FALSE(c.ok()) << k.text;
    EXPECT_NE(c.status().message().find(p), std::string::npos) << c.status();
    EXPECT_NE(c.status().message().find(k.want), std::string::npos) << c.status();
  }
  absl::StatusOr<Config> missing = ReadConfig("/nonexistent/seedd.json", kKnown);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/seedd.json"), std::string::npos);
}

}  // namespace
}  // namespace seedvisor::seedd
