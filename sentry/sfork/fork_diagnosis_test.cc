#include "sentry/sfork/fork_diagnosis.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace seedvisor::sentry {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A child that takes `steps` steps on the trace, then (in a process group
// of its own) forks a grandchild, says so on `ready` and both block in
// read(2) of a pipe nobody writes to.
pid_t StartChild(ForkTrace* trace, int steps, int ready, int block[2]) {
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    SetForkChildTrace(trace);
    char name[32];
    for (int i = 0; i < steps; ++i) {
      snprintf(name, sizeof(name), "step %d", i);
      ForkChildStep(name);
    }
    const pid_t g = fork();
    if (g == 0) {
      char c;
      while (read(block[0], &c, 1) != 0) {
      }
      _exit(0);
    }
    (void)!write(ready, &g, sizeof(g));
    char c;
    while (read(block[0], &c, 1) != 0) {
    }
    _exit(0);
  }
  return pid;
}

class ForkDiagnosisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    trace_ = ForkTrace::Map();
    ASSERT_NE(trace_, nullptr);
    ASSERT_EQ(pipe(ready_), 0);
    // Its write end stays open here: the children block until killed.
    ASSERT_EQ(pipe(block_), 0);
  }
  void TearDown() override {
    if (child_ > 0) {
      kill(-child_, SIGKILL);
      waitpid(child_, nullptr, 0);
    }
    ForkTrace::Unmap(trace_);
    for (int fd : {ready_[0], ready_[1], block_[0], block_[1]}) close(fd);
  }
  // Starts the child and waits until both it and its grandchild block.
  void Start(int steps) {
    child_ = StartChild(trace_, steps, ready_[1], block_);
    ASSERT_GT(child_, 0);
    ASSERT_EQ(read(ready_[0], &grandchild_, sizeof(grandchild_)),
              static_cast<ssize_t>(sizeof(grandchild_)));
    // Until both sleep in read(2).
    for (int i = 0; i < 500 && !(Sleeping(child_) && Sleeping(grandchild_)); ++i) usleep(2000);
  }
  static bool Sleeping(pid_t pid) {
    return DescribeHostProcess(pid, "p").find(": state S, wchan") != std::string::npos;
  }

  ForkTrace* trace_ = nullptr;
  int ready_[2] = {-1, -1};
  int block_[2] = {-1, -1};
  pid_t child_ = -1;
  pid_t grandchild_ = -1;
};

TEST_F(ForkDiagnosisTest, TellsTheChildsStepsAndItsThreadsAndGroup) {
  Start(3);
  const std::string d = DescribeUnreportedFork(child_, child_, trace_);
  // The steps the child named, in order, the last one current.
  EXPECT_THAT(d, HasSubstr("the forked sentry's steps (3 in all):"));
  const size_t s0 = d.find(" step 0\n"), s1 = d.find(" step 1\n"), s2 = d.find(" step 2  <- current");
  EXPECT_NE(s0, std::string::npos) << d;
  EXPECT_NE(s1, std::string::npos) << d;
  EXPECT_NE(s2, std::string::npos) << d;
  EXPECT_LT(s0, s1);
  EXPECT_LT(s1, s2);
  EXPECT_THAT(d, HasSubstr("in its current step for"));
  // The child itself (leader of its group: "the forked sentry", not again
  // as "its anchor") and its grandchild, each thread sleeping in read(2)
  // (syscall 0) with its kernel wait channel named.
  EXPECT_THAT(d, HasSubstr("the forked sentry " + std::to_string(child_) + " ("));
  EXPECT_THAT(d, Not(HasSubstr("its anchor " + std::to_string(child_))));
  EXPECT_THAT(d, HasSubstr("in its group " + std::to_string(grandchild_) + " ("));
  EXPECT_THAT(d, HasSubstr("  thread " + std::to_string(child_) + ": state S, wchan "));
  EXPECT_THAT(d, HasSubstr("  thread " + std::to_string(grandchild_) + ": state S, wchan "));
  EXPECT_THAT(d, HasSubstr(", syscall 0 0x")) << d;
  EXPECT_THAT(d, HasSubstr(", tracer 0, pending "));
  EXPECT_THAT(d, HasSubstr("group " + std::to_string(child_) + "\n"));
}

TEST_F(ForkDiagnosisTest, TellsWhetherTheChildHoldsTheReportFile) {
  Start(1);
  // The child inherited ready_ (it writes on ready_[1]; ready_[0] too).
  std::string d = DescribeUnreportedFork(child_, 0, trace_, ready_[1]);
  EXPECT_THAT(d, HasSubstr("the report is awaited on fd " + std::to_string(ready_[1]) +
                           " (pipe:["));
  EXPECT_THAT(d, HasSubstr("the forked sentry holds it as fd " + std::to_string(ready_[0]) +
                           " (read), " + std::to_string(ready_[1]) + " (write)\n"));
  // A pipe made after the child: it holds no end of it.
  int late[2];
  ASSERT_EQ(pipe(late), 0);
  d = DescribeUnreportedFork(child_, 0, trace_, late[0]);
  EXPECT_THAT(d, HasSubstr("the forked sentry holds it as no fd\n"));
  close(late[0]);
  close(late[1]);
}

TEST_F(ForkDiagnosisTest, KeepsTheLatestSteps) {
  Start(ForkTrace::kHistory + 6);
  const std::string d = DescribeUnreportedFork(child_, 0, trace_);
  EXPECT_THAT(d, HasSubstr("(" + std::to_string(ForkTrace::kHistory + 6) +
                           " in all, the latest shown)"));
  EXPECT_THAT(d, Not(HasSubstr(" step 5\n")));
  EXPECT_THAT(d, HasSubstr(" step 6\n"));
  EXPECT_THAT(d, HasSubstr(" step " + std::to_string(ForkTrace::kHistory + 5) + "  <- current"));
  // No group asked for: the grandchild is not described.
  EXPECT_THAT(d, Not(HasSubstr("in its group")));
}

TEST(ForkDiagnosis, AChildThatNamedNoStepAndAGoneProcess) {
  ForkTrace* trace = ForkTrace::Map();
  ASSERT_NE(trace, nullptr);
  const pid_t pid = fork();
  if (pid == 0) _exit(0);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
  const std::string d = DescribeUnreportedFork(pid, 0, trace);
  EXPECT_THAT(d, HasSubstr("named no step"));
  EXPECT_THAT(d, HasSubstr("the forked sentry " + std::to_string(pid) + ": gone"));
  ForkTrace::Unmap(trace);
}

TEST(ForkDiagnosis, StepsOutsideAForkChildGoNowhere) {
  SetForkChildTrace(nullptr);
  ForkChildStep("nothing");  // must not crash
  ForkTrace* trace = ForkTrace::Map();
  ASSERT_NE(trace, nullptr);
  trace->Step("a very long step name that goes on and on past the ninety-six bytes a step keeps, "
              "and then some more");
  const std::string d = trace->Describe(0);
  EXPECT_THAT(d, HasSubstr("(1 in all)"));
  EXPECT_THAT(d, HasSubstr("a very long step name"));
  EXPECT_THAT(d, Not(HasSubstr("then some more")));
  ForkTrace::Unmap(trace);
}

}  // namespace
}  // namespace seedvisor::sentry
