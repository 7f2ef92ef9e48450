// CHILD_REQUIRE(cond) for checks in a forked child (RunInChild,
// InOwnNamespace), where gtest's assertions do not work: prints the file,
// line, condition and errno to stderr and returns 2 from the enclosing
// function (the child's exit code).
//
//   EXPECT_EQ(RunInChild([] { CHILD_REQUIRE(setfsuid(-1) == 0); return 0; }), 0);
#ifndef SEEDVISOR_TEST_SYSCALLS_CHILD_CHECK_H_
#define SEEDVISOR_TEST_SYSCALLS_CHILD_CHECK_H_

#include <cerrno>
#include <cstdio>

#define CHILD_REQUIRE(cond)                                                          \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      fprintf(stderr, "%s:%d: %s (errno %d)\n", __FILE__, __LINE__, #cond, errno); \
      return 2;                                                                      \
    }                                                                                \
  } while (0)

#endif  // SEEDVISOR_TEST_SYSCALLS_CHILD_CHECK_H_
