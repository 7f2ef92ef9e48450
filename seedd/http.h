// The gateway's HTTP/1.1: a small, bounded request parser and a response
// formatter. No chunked bodies (Content-Length only), no continuation lines,
// no pipelining beyond what a buffer holds; anything else is a 400 (or 413
// when too large) with a one-line reason.
//
//   std::string buf = ...bytes read so far...;
//   HttpParse p = ParseHttpRequest(buf);
//   if (p.state == HttpParse::kNeedMore) read more;
//   if (p.state == HttpParse::kBad) answer p.error_code with p.error;
//   buf.erase(0, p.consumed);   // keep-alive: the next request follows
#ifndef SEEDVISOR_SEEDD_HTTP_H_
#define SEEDVISOR_SEEDD_HTTP_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace seedvisor::seedd {

inline constexpr size_t kMaxHeaderBytes = 16 << 10;
inline constexpr size_t kMaxHeaders = 64;
inline constexpr size_t kMaxBodyBytes = 8 << 20;

struct HttpRequest {
  std::string method;  // "GET", "PUT", ...
  std::string path;    // the target without its query
  std::string query;   // after '?', or ""
  int minor_version = 1;  // HTTP/1.<minor>
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  bool keep_alive = true;

  // The first value of header `name` (lower case), or "".
  std::string Header(absl::string_view name) const;
};

struct HttpParse {
  enum State { kNeedMore, kDone, kBad } state = kNeedMore;
  HttpRequest request;  // when kDone
  size_t consumed = 0;  // bytes of the buffer that request used
  int error_code = 0;   // when kBad: 400, 413, 501, 505
  std::string error;    // when kBad: why, one line
};

HttpParse ParseHttpRequest(absl::string_view buf);

struct HttpResponse {
  int code = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// A JSON error body {"error": message}.
HttpResponse ErrorResponse(int code, absl::string_view message);

std::string FormatHttpResponse(const HttpResponse& r, bool keep_alive);

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_HTTP_H_
