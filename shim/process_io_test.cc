#include "shim/process_io.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "gtest/gtest.h"

namespace seedvisor::shim {
namespace {

// Everything readable on fd until EOF, or "<timeout>" after 5 s of quiet.
std::string ReadToEof(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0) return out + "<timeout>";
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

class StdinTest : public testing::Test {
 protected:
  void SetUp() override {
    char t[] = "/tmp/process_io_test.XXXXXX";
    ASSERT_NE(mkdtemp(t), nullptr);
    fifo_ = std::string(t) + "/stdin";
    ASSERT_EQ(mkfifo(fifo_.c_str(), 0600), 0);
  }
  // The stdin the sandbox would open: /proc/<shim>/fd/<read end>.
  int OpenSandboxStdin(ProcessIO& io) {
    int fd = open(io.SandboxStdio().stdin().c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    EXPECT_TRUE(io.Started().ok());
    return fd;
  }
  std::string fifo_;
};

// ctr writes its stdin into the fifo and sends CloseIO as soon as its own
// stdin ends, while the shim's copier may not have read the data yet; the
// client keeps the fifo open meanwhile. The process still gets all of it,
// then EOF.
TEST_F(StdinTest, CloseIOAfterWriteKeepsTheData) {
  for (int i = 0; i < 20; ++i) {
    auto io = ProcessIO::Create(fifo_, "", "", false);
    ASSERT_TRUE(io.ok()) << io.status();
    int in = OpenSandboxStdin(**io);
    int w = open(fifo_.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(w, 0);
    ASSERT_EQ(write(w, "in-exec", 7), 7);
    (*io)->CloseStdin();
    EXPECT_EQ(ReadToEof(in), "in-exec") << "round " << i;
    close(w);
    close(in);
  }
}

// CloseIO from a client that never opened the fifo: EOF all the same.
TEST_F(StdinTest, CloseIOWithoutAWriter) {
  auto io = ProcessIO::Create(fifo_, "", "", false);
  ASSERT_TRUE(io.ok()) << io.status();
  int in = OpenSandboxStdin(**io);
  (*io)->CloseStdin();
  EXPECT_EQ(ReadToEof(in), "");
  close(in);
}

// Without CloseIO, EOF comes when the client closes the fifo.
TEST_F(StdinTest, WriterCloseIsEof) {
  auto io = ProcessIO::Create(fifo_, "", "", false);
  ASSERT_TRUE(io.ok()) << io.status();
  int in = OpenSandboxStdin(**io);
  int w = open(fifo_.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(w, 0);
  ASSERT_EQ(write(w, "abc", 3), 3);
  close(w);
  EXPECT_EQ(ReadToEof(in), "abc");
  close(in);
}

// After Finish the stdin copier ends (and drops its reference) even though
// the client never wrote or closed anything.
TEST_F(StdinTest, FinishEndsTheCopier) {
  auto io = ProcessIO::Create(fifo_, "", "", false);
  ASSERT_TRUE(io.ok()) << io.status();
  std::weak_ptr<ProcessIO> weak = *io;
  (*io)->Finish(absl::ZeroDuration());
  io->reset();
  for (int i = 0; i < 200 && !weak.expired(); ++i) usleep(10 * 1000);
  EXPECT_TRUE(weak.expired());
}

}  // namespace
}  // namespace seedvisor::shim
