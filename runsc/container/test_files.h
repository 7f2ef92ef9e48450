// Small file helpers for runsc/container's tests.
//
//   std::string dir = testing_files::TempDir("cgroup_test");
//   testing_files::Put(dir + "/x", "1");
//   EXPECT_EQ(testing_files::Slurp(dir + "/x"), "1");
#ifndef SEEDVISOR_RUNSC_CONTAINER_TEST_FILES_H_
#define SEEDVISOR_RUNSC_CONTAINER_TEST_FILES_H_

#include <stdlib.h>

#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace seedvisor::container::testing_files {

// A fresh directory under /tmp whose name starts with `prefix`.
inline std::string TempDir(const std::string& prefix) {
  std::string t = "/tmp/" + prefix + ".XXXXXX";
  EXPECT_NE(mkdtemp(t.data()), nullptr) << t;
  return t;
}

// The whole file; empty if it cannot be read.
inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void Put(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace seedvisor::container::testing_files

#endif  // SEEDVISOR_RUNSC_CONTAINER_TEST_FILES_H_
