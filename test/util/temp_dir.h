// A test's scratch directory that is gone when the test is: nothing a test
// run makes may stay behind in /tmp (CI machines would fill up).
//
//   ScopedTempDir dir;                          // under $TEST_TMPDIR
//   WriteConfig(dir.Path("config.json"));
//   // A unix socket's path must fit sun_path (108 bytes) and Bazel's
//   // $TEST_TMPDIR can be longer: a short directory under /tmp instead.
//   ScopedTempDir sockets = ScopedTempDir::Short("ttrpc_test");
//   Listen(sockets.Path("s.sock"));
//
// The directory and everything in it is removed when the object goes away,
// so an ASSERT that ends a test early still cleans up. $TEST_TMPDIR (which
// Bazel empties itself) is the default so that even a crashed test leaves
// nothing outside Bazel's output base; /tmp is only the fallback when the
// binary runs outside Bazel.
#ifndef SEEDVISOR_TEST_UTIL_TEMP_DIR_H_
#define SEEDVISOR_TEST_UTIL_TEMP_DIR_H_

#include <string>
#include <string_view>

namespace seedvisor::testutil {

class ScopedTempDir {
 public:
  // A fresh directory `<$TEST_TMPDIR or /tmp>/<prefix>.XXXXXX`.
  explicit ScopedTempDir(std::string_view prefix = "test");
  // A fresh directory `/tmp/<prefix>.XXXXXX`, for paths that must be short.
  static ScopedTempDir Short(std::string_view prefix);

  ~ScopedTempDir();
  ScopedTempDir(ScopedTempDir&& other) noexcept;
  ScopedTempDir& operator=(ScopedTempDir&& other) noexcept;
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name.
  std::string Path(std::string_view name) const;
  // A name in the directory that no earlier call returned
  // (path()/<stem><n>); nothing is created.
  std::string NewPath(std::string_view stem);

 private:
  ScopedTempDir(std::string_view base, std::string_view prefix);
  void Remove();

  std::string path_;
  int next_name_ = 0;
};

// $TEST_TMPDIR, or /tmp when it is not set.
std::string TestTmpRoot();

}  // namespace seedvisor::testutil

#endif  // SEEDVISOR_TEST_UTIL_TEMP_DIR_H_
