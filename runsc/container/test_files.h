// Small file helpers for runsc/container's tests.
//
//   testutil::ScopedTempDir dir("cgroup_test");  // test/util/temp_dir.h
//   testing_files::Put(dir.Path("x"), "1");
//   EXPECT_EQ(testing_files::Slurp(dir.Path("x")), "1");
#ifndef SEEDVISOR_RUNSC_CONTAINER_TEST_FILES_H_
#define SEEDVISOR_RUNSC_CONTAINER_TEST_FILES_H_

#include <fstream>
#include <sstream>
#include <string>

namespace seedvisor::container::testing_files {

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
