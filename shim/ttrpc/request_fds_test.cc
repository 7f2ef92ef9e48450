// Fds that travel with a request (Client::Call's fds, CallContext::fds).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "shim/ttrpc/client.h"
#include "shim/ttrpc/server.h"
#include "shim/ttrpc/ttrpc.pb.h"

namespace seedvisor::ttrpc {
namespace {

constexpr char kSvc[] = "test.v1.Fds";

// The inode of an fd, as a string ("-1": none).
std::string InodeOf(int fd) {
  struct stat st{};
  if (fd < 0 || fstat(fd, &st) != 0) return "-1";
  return absl::StrCat(st.st_ino);
}

// Whether the write ends of the pipe whose read end is `rd` are all closed
// within 3 s (its reader sees end of file).
bool WritersGone(int rd) {
  pollfd p = {.fd = rd, .events = POLLIN, .revents = 0};
  if (poll(&p, 1, 3000) != 1) return false;
  char c;
  return read(rd, &c, 1) == 0;
}

// Take: takes the request's first fd and answers its inode in value.
// Ignore: takes none. Block: takes none, waits for `release`.
struct FdServer {
  explicit FdServer(size_t max_fds) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    server.set_max_request_fds(max_fds);
    server.RegisterMethod<KeyValue, KeyValue>(
        kSvc, "Take", [](const CallContext& ctx, const KeyValue& req) -> absl::StatusOr<KeyValue> {
          KeyValue out = req;
          const int fd = ctx.fds.Take(0);
          out.set_value(InodeOf(fd));
          EXPECT_EQ(ctx.fds.Take(0), -1);  // once
          if (fd >= 0) close(fd);
          return out;
        });
    server.RegisterMethod<KeyValue, KeyValue>(
        kSvc, "Ignore", [](const CallContext& ctx, const KeyValue& req) -> absl::StatusOr<KeyValue> {
          KeyValue out = req;
          out.set_value(absl::StrCat(ctx.fds.size()));
          return out;
        });
    server.RegisterMethod<KeyValue, KeyValue>(
        kSvc, "Block", [this](const CallContext&, const KeyValue& req) -> absl::StatusOr<KeyValue> {
          blocked = true;
          while (!release.load()) usleep(1000);
          return req;
        });
    server.ServeConnection(sv[0]);
    client_fd = sv[1];
  }
  Server server;
  std::atomic<bool> blocked{false}, release{false};
  int client_fd = -1;
};

struct Pipe {
  Pipe() { EXPECT_EQ(pipe2(fd, O_CLOEXEC), 0); }
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
  void CloseWriter() {
    close(fd[1]);
    fd[1] = -1;
  }
  int fd[2] = {-1, -1};
};

TEST(RequestFdsTest, EachRequestGetsTheFdsSentWithIt) {
  FdServer s(1);
  Client c(s.client_fd);
  // Concurrent calls on one connection, each with a pipe of its own: every
  // request's fd is its own, never a neighbour's.
  constexpr int kCalls = 64;
  std::vector<Pipe> pipes(kCalls);
  std::vector<std::string> got(kCalls);
  std::vector<std::thread> ts;
  for (int i = 0; i < kCalls; ++i) {
    ts.emplace_back([&, i] {
      KeyValue req, resp;
      req.set_key(std::string(size_t(i) * 997 % 5000, 'x'));  // frames of many sizes
      // Every third call brings nothing.
      std::vector<int> fds;
      if (i % 3 != 0) fds.push_back(pipes[size_t(i)].fd[0]);
      absl::Status st = c.Call(kSvc, "Take", req, &resp, absl::Seconds(10), {}, fds);
      got[size_t(i)] = st.ok() ? resp.value() : std::string(st.message());
    });
  }
  for (std::thread& t : ts) t.join();
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(got[size_t(i)], i % 3 != 0 ? InodeOf(pipes[size_t(i)].fd[0]) : "-1") << i;
  }
}

TEST(RequestFdsTest, FdsNoHandlerTookAreClosed) {
  FdServer s(1);
  Client c(s.client_fd);
  Pipe p;
  KeyValue req, resp;
  ASSERT_TRUE(c.Call(kSvc, "Ignore", req, &resp, absl::Seconds(5), {}, {p.fd[1]}).ok());
  EXPECT_EQ(resp.value(), "1");
  p.CloseWriter();
  EXPECT_TRUE(WritersGone(p.fd[0]));
}

TEST(RequestFdsTest, AServerThatTakesNoFdsGetsNone) {
  FdServer s(0);
  Client c(s.client_fd);
  Pipe p;
  KeyValue req, resp;
  ASSERT_TRUE(c.Call(kSvc, "Take", req, &resp, absl::Seconds(5), {}, {p.fd[1]}).ok());
  EXPECT_EQ(resp.value(), "-1");
  p.CloseWriter();
  EXPECT_TRUE(WritersGone(p.fd[0]));
}

TEST(RequestFdsTest, MoreFdsThanAllowedAreClosed) {
  FdServer s(1);
  Client c(s.client_fd);
  Pipe a, b;
  KeyValue req, resp;
  ASSERT_TRUE(c.Call(kSvc, "Ignore", req, &resp, absl::Seconds(5), {}, {a.fd[1], b.fd[1]}).ok());
  EXPECT_EQ(resp.value(), "1");
  a.CloseWriter();
  b.CloseWriter();
  EXPECT_TRUE(WritersGone(a.fd[0]));
  EXPECT_TRUE(WritersGone(b.fd[0]));
}

// A host fork of the serving process (a seed's sentry forking for another
// request) closes its copies of the fds a request brought that no handler
// has taken: the copy never keeps another request's device.
TEST(RequestFdsTest, AForkedCopyClosesTheFdsNoHandlerTook) {
  FdServer s(1);
  Client c(s.client_fd);
  Pipe p, go;
  std::thread call([&] {
    KeyValue req, resp;
    EXPECT_TRUE(c.Call(kSvc, "Block", req, &resp, absl::Seconds(10), {}, {p.fd[1]}).ok());
  });
  for (int i = 0; i < 3000 && !s.blocked.load(); ++i) usleep(1000);
  ASSERT_TRUE(s.blocked.load());
  pid_t pid;
  {
    Server::ForkHold hold(s.server);
    pid = fork();
    if (pid == 0) {
      // One thread, no lock taken, no allocation.
      s.server.AbandonInForkChild();
      close(p.fd[1]);
      close(go.fd[1]);
      char ch;
      (void)!read(go.fd[0], &ch, 1);  // until the parent is done
      _exit(0);
    }
  }
  ASSERT_GT(pid, 0);
  p.CloseWriter();
  s.release = true;
  call.join();
  // The server closed its copy after the handler; the child its own.
  EXPECT_TRUE(WritersGone(p.fd[0]));
  go.CloseWriter();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

}  // namespace
}  // namespace seedvisor::ttrpc
