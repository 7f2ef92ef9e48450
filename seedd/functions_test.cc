#include "seedd/functions.h"

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
  auto v1 = fs.Put(f);
  EXPECT_EQ(fs.CountCall(*v1), 1u);
  EXPECT_EQ(fs.CountCall(*v1), 2u);
  auto v2 = fs.Put(f);
  EXPECT_GT(v2->version, v1->version);
  EXPECT_EQ(fs.CountCall(*v1), 0u);  // an old version's call does not count
  EXPECT_EQ(fs.CountCall(*v2), 1u);
  EXPECT_EQ(fs.Get("a")->version, v2->version);
  EXPECT_EQ(fs.Get("b"), nullptr);
}

}  // namespace
}  // namespace seedvisor::seedd
