#include "seedd/http.h"

#include <string>

#include "gtest/gtest.h"

namespace seedvisor::seedd {
namespace {

TEST(ParseHttpRequest, ParsesAPostWithBodyAndLeavesTheNextRequest) {
  std::string buf =
      "POST /invoke/hello?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\n\r\n{\"a\":1}GET /seeds HTTP/1.1\r\n\r\n";
  HttpParse p = ParseHttpRequest(buf);
  ASSERT_EQ(p.state, HttpParse::kDone) << p.error;
  EXPECT_EQ(p.request.method, "POST");
  EXPECT_EQ(p.request.path, "/invoke/hello");
  EXPECT_EQ(p.request.query, "x=1");
  EXPECT_EQ(p.request.body, "{\"a\":1}");
  EXPECT_EQ(p.request.Header("host"), "a");
  EXPECT_TRUE(p.request.keep_alive);
  HttpParse next = ParseHttpRequest(buf.substr(p.consumed));
  ASSERT_EQ(next.state, HttpParse::kDone);
  EXPECT_EQ(next.request.path, "/seeds");
}

TEST(ParseHttpRequest, WaitsForTheWholeBody) {
  EXPECT_EQ(ParseHttpRequest("PUT /f HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345").state,
            HttpParse::kNeedMore);
  EXPECT_EQ(ParseHttpRequest("GET / HTTP/1.1\r\nHost:").state, HttpParse::kNeedMore);
}

TEST(ParseHttpRequest, ConnectionSemantics) {
  EXPECT_FALSE(ParseHttpRequest("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").request.keep_alive);
  EXPECT_FALSE(ParseHttpRequest("GET / HTTP/1.0\r\n\r\n").request.keep_alive);
  EXPECT_TRUE(ParseHttpRequest("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").request.keep_alive);
}

TEST(ParseHttpRequest, RejectsMalformedRequests) {
  struct Case {
    const char* text;
    int code;
  } cases[] = {
      {"GET /\r\n\r\n", 400},
      {"GET / HTTP/1.1 extra\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\n\r\n", 400},
      {"GET nopath HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/2.0\r\n\r\n", 505},
      {"GET / FTP/1.0\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", 400},
      {"POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413},
      {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
  };
  for (const Case& c : cases) {
    HttpParse p = ParseHttpRequest(c.text);
    EXPECT_EQ(p.state, HttpParse::kBad) << c.text;
    EXPECT_EQ(p.error_code, c.code) << c.text;
    EXPECT_FALSE(p.error.empty());
  }
}

TEST(ParseHttpRequest, BoundsTheHeaderSection) {
  std::string big = "GET / HTTP/1.1\r\nX: " + std::string(kMaxHeaderBytes, 'a');
  EXPECT_EQ(ParseHttpRequest(big).state, HttpParse::kBad);
  std::string many = "GET / HTTP/1.1\r\n";
  for (size_t i = 0; i <= kMaxHeaders; i++) many += "X: y\r\n";
  EXPECT_EQ(ParseHttpRequest(many + "\r\n").state, HttpParse::kBad);
}

TEST(FormatHttpResponse, WritesStatusLengthAndHeaders) {
  HttpResponse r;
  r.code = 404;
  r.body = "{}";
  r.headers.emplace_back("Server-Timing", "fork;dur=1.0");
  EXPECT_EQ(FormatHttpResponse(r, false),
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
            "Server-Timing: fork;dur=1.0\r\nConnection: close\r\n\r\n{}");
}

TEST(ErrorResponse, QuotesBytesThatAreNotUtf8) {
  // fuzz_http_test found this: "no route for /\xff" made nlohmann::json throw.
  HttpResponse r = ErrorResponse(404, "no route for /a\xff\xfe" "b");
  EXPECT_EQ(r.code, 404);
  EXPECT_EQ(r.body, "{\"error\":\"no route for /a\xef\xbf\xbd\xef\xbf\xbd" "b\"}\n");
}

TEST(ParseHttpRequest, ReasonIsOneLineWhateverTheClientSent) {
  // fuzz_http_test found this: a bare LF in the version went into the reason.
  HttpParse p = ParseHttpRequest("GET / HTTP/1\n.1\r\n\r\n");
  ASSERT_EQ(p.state, HttpParse::kBad);
  EXPECT_EQ(p.error_code, 505);
  EXPECT_EQ(p.error.find('\n'), std::string::npos) << p.error;
}

}  // namespace
}  // namespace seedvisor::seedd
