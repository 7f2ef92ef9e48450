#include "sentry/base/log.h"

#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "sentry/base/read_file.h"
#include "test/util/temp_dir.h"

namespace seedvisor {
namespace {

// Write() computes the local time from the offset Init() read (no
// localtime_r per line: see log.cc); it reads as localtime_r would.
TEST(LogTest, LineStartsWithTheLocalTime) {
  const testutil::ScopedTempDir dir("log_test");
  const std::string path = dir.Path("log");
  // Not UTC, with a half hour: the offset is applied, whole.
  setenv("TZ", "XYZ-5:30", 1);
  tzset();
  Log::Init(true, path, "test");
  time_t before = time(nullptr);
  Log::Write("hello");
  time_t after = time(nullptr);
  const std::string line = ReadFileOrEmpty(path);
  bool matched = false;
  for (time_t t = before; t <= after && !matched; ++t) {
    tm local;
    localtime_r(&t, &local);
    char want[32];
    strftime(want, sizeof(want), "D%m%d %H:%M:%S.", &local);
    matched = line.rfind(want, 0) == 0;
  }
  EXPECT_TRUE(matched) << line;
  EXPECT_NE(line.find("] hello\n"), std::string::npos) << line;
}

}  // namespace
}  // namespace seedvisor
