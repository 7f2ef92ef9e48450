#include "seedd/http.h"

#include "absl/algorithm/container.h"
#include "absl/strings/escaping.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace seedvisor::seedd {
namespace {

HttpParse Bad(int code, std::string why) {
  HttpParse p;
  p.state = HttpParse::kBad;
  p.error_code = code;
  p.error = std::move(why);
  return p;
}

// RFC 9110 token characters (method and header names).
bool IsToken(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (absl::ascii_isalnum(c)) continue;
    if (!absl::StrContains("!#$%&'*+-.^_`|~", c)) return false;
  }
  return true;
}

bool IsFieldValue(absl::string_view s) {
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

const char* Reason(int code) {
  switch (code) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
  }
}

}  // namespace

std::string HttpRequest::Header(absl::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

HttpParse ParseHttpRequest(absl::string_view buf) {
  size_t end = buf.find("\r\n\r\n");
  if (end == absl::string_view::npos) {
    if (buf.size() > kMaxHeaderBytes) {
      return Bad(400, absl::StrCat("request header section is over ", kMaxHeaderBytes, " bytes"));
    }
    return HttpParse();
  }
  if (end + 4 > kMaxHeaderBytes) {
    return Bad(400, absl::StrCat("request header section is over ", kMaxHeaderBytes, " bytes"));
  }
  std::vector<absl::string_view> lines = absl::StrSplit(buf.substr(0, end), "\r\n");
  HttpParse p;
  HttpRequest& r = p.request;
  // Request line: METHOD SP TARGET SP HTTP/1.x
  std::vector<absl::string_view> rl = absl::StrSplit(lines[0], ' ');
  if (rl.size() != 3) return Bad(400, "request line is not 'METHOD TARGET HTTP/1.x'");
  if (!IsToken(rl[0])) return Bad(400, "request method is not a token");
  if (rl[1].empty() || rl[1][0] != '/' || !IsFieldValue(rl[1]) || absl::StrContains(rl[1], '\t')) {
    return Bad(400, "request target must be an absolute path");
  }
  if (rl[2] == "HTTP/1.1") {
    r.minor_version = 1;
  } else if (rl[2] == "HTTP/1.0") {
    r.minor_version = 0;
  } else if (absl::StartsWith(rl[2], "HTTP/")) {
    // Escaped: the reason is one line, whatever bytes the client sent.
    return Bad(505, absl::StrCat("HTTP version \"", absl::CHexEscape(rl[2]),
                                 "\" is not supported (HTTP/1.0 and 1.1 are)"));
  } else {
    return Bad(400, "request line does not end in HTTP/1.x");
  }
  r.method = std::string(rl[0]);
  size_t q = rl[1].find('?');
  r.path = std::string(rl[1].substr(0, q));
  if (q != absl::string_view::npos) r.query = std::string(rl[1].substr(q + 1));
  if (lines.size() - 1 > kMaxHeaders) return Bad(400, absl::StrCat("over ", kMaxHeaders, " header fields"));
  for (size_t i = 1; i < lines.size(); i++) {
    size_t colon = lines[i].find(':');
    if (colon == absl::string_view::npos) return Bad(400, absl::StrCat("header line ", i, " has no ':'"));
    absl::string_view name = lines[i].substr(0, colon);
    if (!IsToken(name)) return Bad(400, absl::StrCat("header line ", i, ": malformed field name"));
    absl::string_view value = absl::StripAsciiWhitespace(lines[i].substr(colon + 1));
    if (!IsFieldValue(value)) return Bad(400, absl::StrCat("header ", name, ": control character in value"));
    r.headers.emplace_back(absl::AsciiStrToLower(name), std::string(value));
  }
  if (!r.Header("transfer-encoding").empty()) {
    return Bad(501, "Transfer-Encoding is not supported: send the body with Content-Length");
  }
  size_t length = 0;
  int lengths = 0;
  for (const auto& [k, v] : r.headers) {
    if (k != "content-length") continue;
    if (++lengths > 1) return Bad(400, "more than one Content-Length");
    if (v.empty() || !absl::c_all_of(v, absl::ascii_isdigit) || v.size() > 12 ||
        !absl::SimpleAtoi(v, &length)) {
      return Bad(400, "Content-Length is not a decimal number");
    }
  }
  if (length > kMaxBodyBytes) {
    return Bad(413, absl::StrCat("body of ", length, " bytes is over the limit of ", kMaxBodyBytes));
  }
  size_t total = end + 4 + length;
  if (buf.size() < total) return HttpParse();
  r.body = std::string(buf.substr(end + 4, length));
  std::string conn = absl::AsciiStrToLower(r.Header("connection"));
  r.keep_alive = r.minor_version == 1 ? conn != "close" : conn == "keep-alive";
  p.state = HttpParse::kDone;
  p.consumed = total;
  return p;
}

HttpResponse ErrorResponse(int code, absl::string_view message) {
  HttpResponse r;
  r.code = code;
  // replace: the message may quote a client's bytes that are not UTF-8 (dump would throw).
  r.body = nlohmann::json{{"error", std::string(message)}}.dump(-1, ' ', false,
                                                                nlohmann::json::error_handler_t::replace) +
           "\n";
  return r;
}

std::string FormatHttpResponse(const HttpResponse& r, bool keep_alive) {
  std::string out = absl::StrCat("HTTP/1.1 ", r.code, " ", Reason(r.code), "\r\n");
  absl::StrAppend(&out, "Content-Type: ", r.content_type, "\r\n");
  absl::StrAppend(&out, "Content-Length: ", r.body.size(), "\r\n");
  for (const auto& [k, v] : r.headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
  absl::StrAppend(&out, keep_alive ? "" : "Connection: close\r\n", "\r\n", r.body);
  return out;
}

}  // namespace seedvisor::seedd
