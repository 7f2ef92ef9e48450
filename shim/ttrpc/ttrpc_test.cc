// Server and client over a socketpair (and one real listening socket).
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "sentry/base/mono_clock.h"
#include "sentry/base/wall_clock_step.h"
#include "shim/ttrpc/client.h"
#include "shim/ttrpc/frame.h"
#include "shim/ttrpc/server.h"
#include "shim/ttrpc/socket.h"
#include "shim/ttrpc/ttrpc.pb.h"
#include "test/util/temp_dir.h"

namespace seedvisor::ttrpc {
namespace {

constexpr char kSvc[] = "test.v1.Echo";

// An echo service on KeyValue messages: Echo returns the request with the
// caller's "who" metadata as value; Fail returns NotFound; Block waits until
// `release` is set.
void RegisterEcho(Server* s, std::atomic<bool>* release) {
  s->RegisterMethod<KeyValue, KeyValue>(
      kSvc, "Echo", [](const CallContext& ctx, const KeyValue& req) -> absl::StatusOr<KeyValue> {
        KeyValue out = req;
        out.set_value(ctx.Metadata("who"));
        return out;
      });
  s->RegisterMethod<KeyValue, KeyValue>(
      kSvc, "Fail", [](const CallContext&, const KeyValue& req) -> absl::StatusOr<KeyValue> {
        return absl::NotFoundError("no such thing: " + req.key());
      });
  s->RegisterMethod<KeyValue, KeyValue>(
      kSvc, "Block",
      [release](const CallContext&, const KeyValue& req) -> absl::StatusOr<KeyValue> {
        while (!release->load()) usleep(1000);
        return req;
      });
}

struct Pair {
  Pair() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    RegisterEcho(&server, &release);
    server.ServeConnection(sv[0]);
    client_fd = sv[1];
  }
  Server server;
  std::atomic<bool> release{false};
  int client_fd;
};

// Writes raw bytes and reads one response frame.
Frame RawExchange(int fd, const std::string& bytes) {
  EXPECT_TRUE(WriteAll(fd, bytes).ok());
  FrameDecoder dec;
  Frame f;
  char buf[4096];
  while (dec.Next(&f) != FrameDecoder::kFrame) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) {
      ADD_FAILURE() << "connection closed while waiting for a response";
      return f;
    }
    dec.Feed(buf, static_cast<size_t>(n));
  }
  return f;
}

std::string RequestBytes(uint32_t id, const std::string& service, const std::string& method,
                         const std::string& payload) {
  Request r;
  r.set_service(service);
  r.set_method(method);
  r.set_payload(payload);
  return EncodeFrame(id, kTypeRequest, r.SerializeAsString());
}

TEST(TtrpcTest, EchoWithMetadata) {
  Pair p;
  Client c(p.client_fd);
  KeyValue req, resp;
  req.set_key("k");
  ASSERT_TRUE(c.Call(kSvc, "Echo", req, &resp, absl::ZeroDuration(), {{"who", "me"}}).ok());
  EXPECT_EQ(resp.key(), "k");
  EXPECT_EQ(resp.value(), "me");
}

TEST(TtrpcTest, StatusCodesAsTtrpc) {
  Pair p;
  Client c(p.client_fd);
  KeyValue req, resp;
  req.set_key("x");
  absl::Status st = c.Call("no.Such", "Echo", req, &resp);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(st.message(), "service no.Such");
  st = c.Call(kSvc, "Bogus", req, &resp);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(st.message(), "method Bogus");
  st = c.Call(kSvc, "Fail", req, &resp);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "no such thing: x");
}

TEST(TtrpcTest, SuccessResponseOmitsStatus) {
  Pair p;
  // An empty request echoes an empty message: the response is 0 bytes.
  Frame f = RawExchange(p.client_fd, RequestBytes(1, kSvc, "Echo", ""));
  EXPECT_EQ(f.header.stream_id, 1u);
  EXPECT_EQ(f.header.type, kTypeResponse);
  EXPECT_EQ(f.data, "");
  close(p.client_fd);
}

TEST(TtrpcTest, ErrorResponseBytes) {
  Pair p;
  Frame f = RawExchange(p.client_fd, RequestBytes(1, kSvc, "Fail", ""));
  Response r;
  ASSERT_TRUE(r.ParseFromString(f.data));
  EXPECT_EQ(r.status().code(), 5);
  EXPECT_EQ(r.payload(), "");
  close(p.client_fd);
}

TEST(TtrpcTest, MalformedFramesGetStatusAndServerKeepsServing) {
  Pair p;
  // Not a protobuf Request.
  Frame f = RawExchange(p.client_fd, EncodeFrame(1, kTypeRequest, "\xff\xff\xff"));
  Response r;
  ASSERT_TRUE(r.ParseFromString(f.data));
  EXPECT_EQ(f.header.stream_id, 1u);
  EXPECT_EQ(r.status().code(), 3);
  // A request whose payload is not the method's message.
  f = RawExchange(p.client_fd, RequestBytes(3, kSvc, "Echo", "\x0a\xff"));
  ASSERT_TRUE(r.ParseFromString(f.data));
  EXPECT_EQ(r.status().code(), 3);
  // An even stream id.
  f = RawExchange(p.client_fd, RequestBytes(4, kSvc, "Echo", ""));
  ASSERT_TRUE(r.ParseFromString(f.data));
  EXPECT_EQ(f.header.stream_id, 4u);
  EXPECT_EQ(r.status().code(), 3);
  EXPECT_EQ(r.status().message(), "StreamID must be odd for client initiated streams");
  // An oversized frame: RESOURCE_EXHAUSTED on its stream.
  std::string big = EncodeFrame(5, kTypeRequest, std::string(kMaxMessageSize + 100, 'a'));
  std::thread w([&] { ASSERT_TRUE(WriteAll(p.client_fd, big).ok()); });
  FrameDecoder dec;
  char buf[4096];
  while (dec.Next(&f) != FrameDecoder::kFrame) {
    ssize_t n = read(p.client_fd, buf, sizeof(buf));
    ASSERT_GT(n, 0);
    dec.Feed(buf, static_cast<size_t>(n));
  }
  w.join();
  ASSERT_TRUE(r.ParseFromString(f.data));
  EXPECT_EQ(f.header.stream_id, 5u);
  EXPECT_EQ(r.status().code(), 8);
  // An unknown frame type gets no answer; the next request still works.
  ASSERT_TRUE(WriteAll(p.client_fd, EncodeFrame(7, 0x7f, "junk")).ok());
  KeyValue kv;
  kv.set_key("after");
  f = RawExchange(p.client_fd, RequestBytes(9, kSvc, "Echo", kv.SerializeAsString()));
  EXPECT_EQ(f.header.stream_id, 9u);
  ASSERT_TRUE(r.ParseFromString(f.data));
  EXPECT_FALSE(r.has_status());
  ASSERT_TRUE(kv.ParseFromString(r.payload()));
  EXPECT_EQ(kv.key(), "after");
  close(p.client_fd);
}

TEST(TtrpcTest, ConcurrentStreamsAnswerOutOfOrder) {
  Pair p;
  Client c(p.client_fd);
  KeyValue req;
  req.set_key("blocked");
  absl::StatusOr<std::string> blocked;
  std::thread t([&] { blocked = c.CallRaw(kSvc, "Block", req.SerializeAsString()); });
  // While Block is outstanding, other calls on the same connection complete.
  for (int i = 0; i < 20; ++i) {
    KeyValue r2, out;
    r2.set_key("k" + std::to_string(i));
    ASSERT_TRUE(c.Call(kSvc, "Echo", r2, &out).ok());
    EXPECT_EQ(out.key(), r2.key());
  }
  p.release = true;
  t.join();
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  KeyValue out;
  ASSERT_TRUE(out.ParseFromString(*blocked));
  EXPECT_EQ(out.key(), "blocked");
}

TEST(TtrpcTest, ManyThreadsOneClient) {
  Pair p;
  Client c(p.client_fd);
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        KeyValue r, out;
        r.set_key(std::to_string(t * 1000 + i));
        if (c.Call(kSvc, "Echo", r, &out).ok() && out.key() == r.key()) ++ok;
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok.load(), 400);
}

TEST(TtrpcTest, TimeoutAndClosedConnection) {
  Pair p;
  auto c = std::make_unique<Client>(p.client_fd);
  KeyValue req, resp;
  absl::Status st = c->Call(kSvc, "Block", req, &resp, absl::Milliseconds(50));
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded);
  // The server goes away while a call is pending.
  std::thread t([&] { st = c->Call(kSvc, "Block", req, &resp); });
  usleep(50 * 1000);
  p.server.Shutdown();
  t.join();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(c->alive());
  st = c->Call(kSvc, "Echo", req, &resp);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  p.release = true;
}

// Issue 10: a call's timeout is on the monotonic clock. With the wall clock
// an hour ahead or behind as the call starts (what a step the other way
// does to a wait begun just before it: wall_clock_step.h), a call of 300 ms
// still times out after 300 ms: abseil's AwaitWithTimeout, which the
// client used, waited an hour (here until the connection closes, 20 s on)
// or not at all.
TEST(TtrpcTest, CallTimeoutIgnoresWallClockSteps) {
  for (const absl::Duration step : {absl::Hours(1), -absl::Hours(1)}) {
    SCOPED_TRACE(absl::FormatDuration(step));
    Pair p;
    Client c(p.client_fd);
    std::atomic<bool> done{false};
    const absl::Duration t0 = sentry::MonotonicNow();
    std::thread fallback([&] {
      while (!done && sentry::MonotonicNow() - t0 < absl::Seconds(20)) usleep(10 * 1000);
      if (!done) c.Close();
    });
    sentry::StepWallClock(step);
    KeyValue req, resp;
    const absl::Status st = c.Call(kSvc, "Block", req, &resp, absl::Milliseconds(300));
    const absl::Duration took = sentry::MonotonicNow() - t0;
    done = true;
    fallback.join();
    sentry::ResetWallClock();
    EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
    EXPECT_GE(took, absl::Milliseconds(300));
    p.release = true;
  }
}

TEST(TtrpcTest, AfterReplyRunsOnceTheReplyIsOut) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Server s;
  std::atomic<bool> release{false}, ran{false};
  s.RegisterMethod<KeyValue, KeyValue>(
      kSvc, "Bye", [&](const CallContext& ctx, const KeyValue& kv) -> absl::StatusOr<KeyValue> {
        // Blocks until the test saw the reply: it must already be written.
        ctx.after_reply = [&] {
          while (!release.load()) usleep(1000);
          ran = true;
        };
        return kv;
      });
  s.ServeConnection(sv[0]);
  Client c(sv[1]);
  KeyValue req, resp;
  req.set_key("bye");
  ASSERT_TRUE(c.Call(kSvc, "Bye", req, &resp, absl::Seconds(5)).ok());
  EXPECT_EQ(resp.key(), "bye");
  EXPECT_FALSE(ran.load());
  release = true;
  for (int i = 0; i < 1000 && !ran.load(); ++i) usleep(1000);
  EXPECT_TRUE(ran.load());
}

TEST(TtrpcTest, ListenDialServeShutdown) {
  // Bazel's TEST_TMPDIR can exceed sun_path's 108 bytes: use /tmp.
  const testutil::ScopedTempDir dir = testutil::ScopedTempDir::Short("ttrpc_test");
  const std::string path = dir.Path("s.sock");
  Server s;
  std::atomic<bool> release{true};
  RegisterEcho(&s, &release);
  absl::Status ls = s.Listen("unix://" + path);
  ASSERT_TRUE(ls.ok()) << ls;
  std::thread serve([&] { s.Serve(); });
  {
    auto c = Client::Dial("unix://" + path);
    ASSERT_TRUE(c.ok()) << c.status();
    KeyValue req, resp;
    req.set_key("over a real socket");
    ASSERT_TRUE((*c)->Call(kSvc, "Echo", req, &resp).ok());
    EXPECT_EQ(resp.key(), req.key());
  }
  // A second Listen on the same path fails: the socket exists.
  Server s2;
  EXPECT_EQ(s2.Listen(path).code(), absl::StatusCode::kAlreadyExists);
  s.Shutdown();
  serve.join();
  unlink(path.c_str());
  EXPECT_FALSE(Client::Dial(path).ok());
}

// Connections and requests run on the server's long-lived threads: a
// hundred requests over twenty connections, one after the other, start a
// few threads, not one per connection and per request (a seed's sentry
// must be able to keep threads from starting across its host fork).
TEST(TtrpcTest, RequestsAndConnectionsReuseThreads) {
  const testutil::ScopedTempDir dir = testutil::ScopedTempDir::Short("ttrpc_test");
  const std::string path = dir.Path("s.sock");
  Server s;
  std::atomic<bool> release{true};
  RegisterEcho(&s, &release);
  ASSERT_TRUE(s.Listen(path).ok());
  std::thread serve([&] { s.Serve(); });
  for (int conn = 0; conn < 20; ++conn) {
    auto c = Client::Dial(path);
    ASSERT_TRUE(c.ok()) << c.status();
    for (int i = 0; i < 5; ++i) {
      KeyValue req, resp;
      req.set_key("k");
      ASSERT_TRUE((*c)->Call(kSvc, "Echo", req, &resp).ok());
    }
  }
  EXPECT_LE(s.pool().threads(), 8);
  EXPECT_GE(s.pool().threads(), 2);  // a reader and a request at least once
  s.Shutdown();
  serve.join();
}

}  // namespace
}  // namespace seedvisor::ttrpc
