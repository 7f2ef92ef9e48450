// Fuzz target: bytes from an HTTP client, through the gateway's request
// parser (seedd/http.h) and, for what parses, the gateway's routes with no
// seed booted (deploy parsing, unknown functions, /seeds, /metrics).
//
// With libFuzzer (clang; Bazel's toolchain here is gcc, so by hand):
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address -I. -Ibazel-bin
//     seedd/fuzz_http.cc seedd/{http,gateway,functions,metrics,runtime_seeds,
//     channel}.cc bazel-bin/seedd/{python,node}_entry.cc fri/*.cc ... -o /tmp/fuzz_http
// In CI, fuzz_http_test runs it under the plain driver (test/fuzz) for a few
// seconds, from the seeds in fuzz_http_main.cc.
//
// What must hold: a parse is done, needs more, or is a 4xx/5xx with a
// one-line reason; it consumes no more than it was given; a request that
// parses from a prefix parses the same from the whole buffer (bytes that
// arrive later never change an earlier request); a response is well formed.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "fri/sandboxes.h"
#include "seedd/functions.h"
#include "seedd/gateway.h"
#include "seedd/http.h"

namespace {

using seedvisor::seedd::HttpParse;

seedvisor::seedd::Gateway& FuzzGateway() {
  static auto* sandboxes = [] {
    char dir[] = "/tmp/fuzz_http.XXXXXX";
    const char* tmp = getenv("TEST_TMPDIR");
    std::string root = tmp != nullptr ? std::string(tmp) + "/fri-root" : std::string(mkdtemp(dir));
    // /bin/false: nothing the fuzzer sends can boot a sandbox.
    return new seedvisor::fri::Sandboxes({.seedsc = "/bin/false", .root = root, .seedsc_flags = {}});
  }();
  static auto* functions = new seedvisor::seedd::Functions();
  static auto* gateway = new seedvisor::seedd::Gateway(*functions, {}, *sandboxes, {});
  return *gateway;
}

void CheckParse(const HttpParse& p, size_t size) {
  switch (p.state) {
    case HttpParse::kNeedMore:
      break;
    case HttpParse::kDone:
      if (p.consumed == 0 || p.consumed > size) abort();
      break;
    case HttpParse::kBad:
      if (p.error_code < 400 || p.error_code > 599 || p.error.empty() ||
          absl::StrContains(p.error, '\n')) {
        abort();
      }
      break;
  }
}

void CheckResponse(const std::string& out) {
  // A status line, CRLF-terminated header lines, an empty line, the body.
  size_t end = out.find("\r\n\r\n");
  if (!absl::StartsWith(out, "HTTP/1.1 ") || end == std::string::npos) abort();
  absl::string_view head(out.data(), end);
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\n' && (i == 0 || head[i - 1] != '\r')) abort();
    if (head[i] == '\r' && (i + 1 >= head.size() || head[i + 1] != '\n')) abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace seedvisor::seedd;
  absl::string_view buf(reinterpret_cast<const char*>(data), size);
  HttpParse whole = ParseHttpRequest(buf);
  CheckParse(whole, size);
  size_t cut = size ? data[0] % (size + 1) : 0;
  HttpParse prefix = ParseHttpRequest(buf.substr(0, cut));
  CheckParse(prefix, cut);
  if (prefix.state == HttpParse::kDone &&
      (whole.state != HttpParse::kDone || whole.consumed != prefix.consumed ||
       whole.request.method != prefix.request.method || whole.request.path != prefix.request.path ||
       whole.request.body != prefix.request.body)) {
    abort();
  }
  if (prefix.state == HttpParse::kBad && whole.state != HttpParse::kBad) abort();
  if (whole.state == HttpParse::kBad) {
    CheckResponse(FormatHttpResponse(ErrorResponse(whole.error_code, whole.error), false));
  }
  if (whole.state != HttpParse::kDone) return 0;
  HttpResponse r = FuzzGateway().Handle(whole.request);
  if (r.code < 200 || r.code > 599) abort();
  // No seed is booted: nothing can be invoked, nothing can be deployed.
  if (whole.request.method == "POST" && absl::StartsWith(whole.request.path, "/invoke/") &&
      r.code == 200) {
    abort();
  }
  CheckResponse(FormatHttpResponse(r, whole.request.keep_alive));
  return 0;
}
