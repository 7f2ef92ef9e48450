#include "sentry/base/read_file.h"

#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "test/util/temp_dir.h"

namespace seedvisor {
namespace {

TEST(ReadFileOrEmptyTest, ReadsTheWholeFile) {
  testutil::ScopedTempDir dir("read_file_test");
  // Larger than one read's buffer, with a NUL inside.
  std::string text(10000, 'x');
  text[5000] = '\0';
  std::ofstream(dir.Path("f"), std::ios::binary) << text;
  EXPECT_EQ(ReadFileOrEmpty(dir.Path("f")), text);
  std::ofstream(dir.Path("empty"));
  EXPECT_EQ(ReadFileOrEmpty(dir.Path("empty")), "");
}

TEST(ReadFileOrEmptyTest, AProcFileOfSizeZeroIsReadToItsEnd) {
  const std::string cmdline = ReadFileOrEmpty("/proc/self/cmdline");
  EXPECT_FALSE(cmdline.empty());
  EXPECT_EQ(cmdline.back(), '\0');
}

TEST(ReadFileOrEmptyTest, WhatCannotBeReadIsEmpty) {
  EXPECT_EQ(ReadFileOrEmpty("/nonexistent/file"), "");
  testutil::ScopedTempDir dir("read_file_test");
  EXPECT_EQ(ReadFileOrEmpty(dir.path()), "") << "a directory";
}

}  // namespace
}  // namespace seedvisor
