#include "seedd/functions.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace seedvisor::seedd {
namespace {

TEST(ParseDeploy, AcceptsAPythonFunction) {
  absl::StatusOr<Function> f = ParseDeploy(
      "hello", R"({"runtime": "python", "handler": "main.handler", "files": {"main.py": "x=1"},
                   "timeout_ms": 500})");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->handler, "main.handler");
  EXPECT_EQ(f->files.at("main.py"), "x=1");
  EXPECT_EQ(f->timeout, absl::Milliseconds(500));
}

TEST(ParseDeploy, AcceptsANodeFunction) {
  absl::StatusOr<Function> f = ParseDeploy(
      "hello", R"({"runtime": "node", "handler": "lib/app.handler",
                   "files": {"lib/app.js": "exports.handler = e => e"}})");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->runtime, "node");
  absl::StatusOr<Function> idx = ParseDeploy(
      "idx", R"({"runtime": "node", "handler": "pkg.handler", "files": {"pkg/index.js": ""}})");
  EXPECT_TRUE(idx.ok()) << idx.status();
}

TEST(ParseDeploy, NamesWhatIsWrong) {
  struct Case {
    const char* name;
    const char* body;
    const char* want;
  } cases[] = {
      {"a/b", R"({})", "function name"},
      {"f", "{", "not valid JSON"},
      {"f", "[]", "JSON object"},
      {"f", R"({"handler": "main.h", "files": {"main.py": ""}})", "runtime"},
      {"f", R"({"runtime": "ruby", "handler": "main.h", "files": {"main.rb": ""}})", "not supported"},
      {"f", R"({"runtime": "node", "handler": "main.h", "files": {"main.py": ""}})", "no main.js"},
      {"f", R"({"runtime": "python", "handler": "main", "files": {"main.py": ""}})", "module.function"},
      {"f", R"({"runtime": "python", "handler": "main.h", "files": {}})", "files"},
      {"f", R"({"runtime": "python", "handler": "main.h", "files": {"other.py": ""}})", "no main.py"},
      {"f", R"({"runtime": "python", "handler": "main.h", "files": {"main.py": 1}})", "not a string"},
      {"f", R"({"runtime": "python", "handler": "main.h", "files": {"../main.py": ""}})", "relative"},
      {"f", R"({"runtime": "python", "handler": "main.h", "files": {"main.py": ""}, "x": 1})", "unknown field"},
      {"f", R"({"runtime": "python", "handler": "main.h", "files": {"main.py": ""}, "timeout_ms": 0})", "timeout_ms"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Function> f = ParseDeploy(c.name, c.body);
    ASSERT_FALSE(f.ok()) << c.body;
    EXPECT_NE(f.status().message().find(c.want), std::string::npos) << f.status() << " for " << c.body;
  }
}

TEST(Functions, VersionsAndCallsPerVersion) {
  Functions fs;
  Function f;
  f.name = "a";
  auto v1 = *fs.Put(f);
  EXPECT_EQ(fs.CountCall(*v1), 1u);
  EXPECT_EQ(fs.CountCall(*v1), 2u);
  auto v2 = *fs.Put(f);
  EXPECT_GT(v2->version, v1->version);
  EXPECT_EQ(fs.CountCall(*v1), 0u);  // an old version's call does not count
  EXPECT_EQ(fs.CountCall(*v2), 1u);
  EXPECT_EQ(fs.Get("a")->version, v2->version);
  EXPECT_EQ(fs.Get("b"), nullptr);
}

TEST(Functions, RecentCallsCountsTheWindow) {
  Functions fs;
  Function f;
  f.name = "a";
  auto v1 = *fs.Put(f);
  absl::Duration t0 = absl::Hours(1);
  fs.CountCall(*v1, t0);
  fs.CountCall(*v1, t0 + absl::Seconds(50));
  fs.CountCall(*v1, t0 + absl::Seconds(70));
  EXPECT_EQ(fs.RecentCalls(*v1, absl::Seconds(60), t0 + absl::Seconds(70)), 2u);
  EXPECT_EQ(fs.RecentCalls(*v1, absl::Seconds(60), t0 + absl::Seconds(200)), 0u);
  EXPECT_EQ(fs.RecentCalls(*v1, absl::Hours(1), t0 + absl::Seconds(70)), 3u);
  auto v2 = *fs.Put(f);
  EXPECT_EQ(fs.RecentCalls(*v2, absl::Hours(1), t0 + absl::Seconds(70)), 0u) << "a redeploy starts over";
}

TEST(Functions, DeployJsonRoundTrips) {
  absl::StatusOr<Function> f = ParseDeploy(
      "a", R"({"runtime": "python", "handler": "m.h", "files": {"m.py": "x", "lib/y.py": "\u00e9"},
               "timeout_ms": 250})");
  ASSERT_TRUE(f.ok()) << f.status();
  absl::StatusOr<Function> g = ParseDeploy("a", DeployJson(*f));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->files, f->files);
  EXPECT_EQ(g->handler, f->handler);
  EXPECT_EQ(g->timeout, absl::Milliseconds(250));
}

std::string TempDir() {
  std::string d = absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp",
                               "/functions_test.", getpid());
  std::filesystem::remove_all(d);
  return d;
}

TEST(Functions, SavedDeploysAreServedAfterARestart) {
  std::string dir = TempDir();
  {
    Functions fs(dir);
    ASSERT_EQ(*fs.Load(), 0);
    Function f = *ParseDeploy("a", R"({"runtime": "python", "handler": "m.h", "files": {"m.py": "1"}})");
    ASSERT_TRUE(fs.Put(f).ok());
    f.files["m.py"] = "2";
    ASSERT_TRUE(fs.Put(f).ok());
    Function b = *ParseDeploy("b", R"({"runtime": "node", "handler": "m.h", "files": {"m.js": ""}})");
    ASSERT_TRUE(fs.Put(b).ok());
  }
  Functions again(dir);
  absl::StatusOr<int> n = again.Load();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2);
  ASSERT_NE(again.Get("a"), nullptr);
  EXPECT_EQ(again.Get("a")->files.at("m.py"), "2") << "the last deploy is what comes back";
  EXPECT_EQ(again.Get("a")->version, 2u);
  EXPECT_EQ(again.Get("b")->runtime, "node");
  Function c = *ParseDeploy("a", R"({"runtime": "python", "handler": "m.h", "files": {"m.py": "3"}})");
  EXPECT_EQ((*again.Put(c))->version, 4u) << "versions keep growing across restarts";
  // A damaged file is an error naming it.
  std::ofstream(dir + "/bad.json") << "{\"version\": 1}";
  absl::StatusOr<int> bad = Functions(dir).Load();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(dir + "/bad.json"), std::string::npos) << bad.status();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace seedvisor::seedd
