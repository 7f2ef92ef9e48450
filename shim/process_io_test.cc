#include "shim/process_io.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "shim/ttrpc/socket.h"
#include "test/util/temp_dir.h"

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
    fifo_ = tmp_.Path("stdin");
    ASSERT_EQ(mkfifo(fifo_.c_str(), 0600), 0);
  }
  // The stdin the sandbox would open: /proc/<shim>/fd/<read end>.
  int OpenSandboxStdin(ProcessIO& io) {
    int fd = open(io.SandboxStdio().stdin().c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    EXPECT_TRUE(io.Started().ok());
    return fd;
  }
  testutil::ScopedTempDir tmp_{"process_io_test"};
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

// containerd's client opens its output fifo for reading in a goroutine
// (blocked in open(2) until a writer comes) and must mark it opened before
// it deletes the task, or the fifo is closed unread. So the reader meets
// a writer at Create, not only when the sandbox opens the fifo at Start:
// a process that printed and exited at once lost its output under load.
class OutputTest : public testing::Test {
 protected:
  void SetUp() override {
    fifo_ = tmp_.Path("stdout");
    ASSERT_EQ(mkfifo(fifo_.c_str(), 0600), 0);
    // The client's reader, blocked in open(2) until a writer comes.
    reader_ = std::thread([this] {
      tid_ = static_cast<pid_t>(syscall(SYS_gettid));
      reader_fd_ = open(fifo_.c_str(), O_RDONLY | O_CLOEXEC);
    });
    // Wait until it is in openat(2) (/proc/.../syscall starts with its number):
    // 10 s at most, a new thread may wait that long for a CPU at load 20-40.
    for (int i = 0; i < 10000; ++i) {
      if (tid_ != 0) {
        std::ifstream f("/proc/self/task/" + std::to_string(tid_.load()) + "/syscall");
        long nr = -1;
        if (f >> nr && nr == SYS_openat) return;
      }
      usleep(1000);
    }
    FAIL() << "the reader never reached open(2)";
  }
  void TearDown() override {
    if (reader_fd_ < 0) {  // still blocked: let it through
      int unblock = open(fifo_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      reader_.join();
      if (unblock >= 0) close(unblock);
    } else {
      reader_.join();
    }
    if (reader_fd_ >= 0) close(reader_fd_);
  }
  // Whether the reader's open(2) returned within 2 s.
  bool ReaderOpened() {
    for (int i = 0; i < 200 && reader_fd_ < 0; ++i) usleep(10 * 1000);
    return reader_fd_ >= 0;
  }
  testutil::ScopedTempDir tmp_{"process_io_test"};
  std::string fifo_;
  std::thread reader_;
  std::atomic<pid_t> tid_{0};
  std::atomic<int> reader_fd_{-1};
};

TEST_F(OutputTest, TheReaderMeetsAWriterAtCreate) {
  auto io = ProcessIO::Create("", fifo_, "", false);
  ASSERT_TRUE(io.ok()) << io.status();
  // The old shim left it blocked until the sandbox opened the fifo at Start.
  ASSERT_TRUE(ReaderOpened());
  // The sandbox at Start: its own writer, through the shim's.
  const std::string path = (*io)->SandboxStdio().stdout();
  EXPECT_EQ(path.rfind("/proc/", 0), 0u) << path;
  int w = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(w, 0);
  ASSERT_TRUE((*io)->Started().ok());
  ASSERT_EQ(write(w, "hi\n", 3), 3);
  close(w);  // the process exited: with the shim's writer gone, EOF
  EXPECT_EQ(ReadToEof(reader_fd_), "hi\n");
}

// A start that fails (or an exit before it) must leave the client its EOF.
TEST_F(OutputTest, DroppedEarlyWritersAreEof) {
  auto io = ProcessIO::Create("", fifo_, "", false);
  ASSERT_TRUE(io.ok()) << io.status();
  ASSERT_TRUE(ReaderOpened());
  (*io)->DropEarlyWriters();
  EXPECT_EQ(ReadToEof(reader_fd_), "");
}

// No reader in open(2) within the wait: the path goes to the sandbox as is.
TEST(OutputNoReaderTest, ThePathGoesAsItIs) {
  const testutil::ScopedTempDir tmp("process_io_test");
  const std::string fifo = tmp.Path("stdout");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  auto io = ProcessIO::Create("", fifo, "", false);
  ASSERT_TRUE(io.ok()) << io.status();
  EXPECT_EQ((*io)->SandboxStdio().stdout(), fifo);
}

// With a terminal the shim copies the pty master to the fifo through the
// early writer: Start's end drops what is still early, and the copier must
// have taken it by then, or the client's reader saw EOF before any output
// (CI at 58836cb: `ctr task exec -t ... echo tty-ok` printed nothing).
TEST_F(OutputTest, ATerminalsOutputGoesThroughTheEarlyWriter) {
  auto io = ProcessIO::Create("", fifo_, "", /*terminal=*/true);
  ASSERT_TRUE(io.ok()) << io.status();
  ASSERT_TRUE(ReaderOpened());
  // The sandbox: a pty, its master sent over the console socket.
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(master, 0);
  ASSERT_EQ(grantpt(master), 0);
  ASSERT_EQ(unlockpt(master), 0);
  int slave = open(ptsname(master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  ASSERT_GE(slave, 0);
  int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& path = (*io)->console_socket();
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  std::copy(path.begin(), path.end(), addr.sun_path);
  ASSERT_EQ(connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_TRUE(ttrpc::SendFd(sock, master).ok());
  close(master);
  ASSERT_TRUE((*io)->Started().ok());
  (*io)->DropEarlyWriters();  // what the end of Start does
  ASSERT_EQ(write(slave, "tty-ok\n", 7), 7);
  close(slave);
  close(sock);
  (*io)->Finish(absl::Seconds(2));
  EXPECT_EQ(ReadToEof(reader_fd_).substr(0, 6), "tty-ok");
}

}  // namespace
}  // namespace seedvisor::shim
