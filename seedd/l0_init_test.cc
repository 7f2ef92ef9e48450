#include "seedd/l0_init.h"

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"
#include "seedd/channel.h"

namespace seedvisor::seedd {
namespace {

TEST(L0ExecFrame, ArgvThenEmptyThenEnv) {
  std::string f = L0ExecFrame({"/bin/echo", "a b"}, {"X=1"});
  const std::string payload("/bin/echo\0a b\0\0X=1\0", 19);
  EXPECT_EQ(f, std::string("\0\0\0\x13", 4) + payload);
}

// Runs L0InitMain in a child with `input` on its stdin; its stdout.
std::string RunInit(const std::string& input, int* status) {
  int in[2], out[2];
  EXPECT_EQ(pipe(in), 0);
  EXPECT_EQ(pipe(out), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    _exit(L0InitMain());
  }
  close(in[0]);
  close(out[1]);
  EXPECT_EQ(write(in[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
  close(in[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = read(out[0], buf, sizeof(buf))) > 0;) got.append(buf, n);
  close(out[0]);
  waitpid(pid, status, 0);
  return got;
}

TEST(L0Init, AnswersReadyThenExecsWithTheRestOfStdinUnread) {
  int status = 0;
  std::string got = RunInit(L0ExecFrame({"/bin/sh", "-c", "echo \"$X\"; cat"}, {"X=from-env"}) + "request bytes",
                            &status);
  ASSERT_GE(got.size(), 4u);
  const size_t n = (static_cast<unsigned char>(got[2]) << 8) | static_cast<unsigned char>(got[3]);
  EXPECT_NE(got.substr(4, n).find("\"ready\":true"), std::string::npos) << got;
  EXPECT_EQ(got.substr(4 + n), "from-env\nrequest bytes");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(L0Init, RefusesWhatItCannotExec) {
  for (const std::string& bad : {L0ExecFrame({"relative"}, {}), L0ExecFrame({"/nonexistent/x"}, {}),
                                 std::string("\0\0\0\x05/bin/", 9), std::string("\x7f\0\0\0", 4),
                                 std::string("\0\0", 2)}) {
    int status = 0;
    std::string got = RunInit(bad, &status);
    EXPECT_NE(got.find("\"error\":\"level-0 init: "), std::string::npos) << got;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 127) << got;
  }
}

}  // namespace
}  // namespace seedvisor::seedd
