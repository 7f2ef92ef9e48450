// fuzz_http's seeds (requests seedd's gateway answers) for the plain driver
// (test/fuzz/fuzz_driver.h), which mutates them for --seconds=N.
#include <cstdint>
#include <string>
#include <vector>

#include "test/fuzz/fuzz_driver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  const std::string deploy =
      R"({"runtime": "python", "handler": "main.handler", "files": {"main.py": "def handler(e, c): return e"}})";
  const std::string node_deploy =
      R"({"runtime": "node", "handler": "lib/a.handler", "files": {"lib/a.js": "exports.handler = e => e"}, "timeout_ms": 10})";
  std::vector<std::string> seeds = {
      "GET /functions HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
      "GET /seeds HTTP/1.0\r\n\r\n",
      "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n",
      "POST /invoke/hello?x=1 HTTP/1.1\r\nContent-Length: 7\r\nContent-Type: application/json\r\n\r\n{\"a\":1}",
      "PUT /functions/hello HTTP/1.1\r\nContent-Length: " + std::to_string(deploy.size()) + "\r\n\r\n" + deploy,
      "PUT /functions/n HTTP/1.1\r\ncontent-length: " + std::to_string(node_deploy.size()) + "\r\n\r\n" + node_deploy,
      "DELETE /nothing HTTP/1.1\r\nX-A: b\r\n\tfolded\r\n\r\n",
      "POST /invoke/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
  };
  return seedvisor::fuzz::RunDriver(argc, argv, "fuzz_http", seeds, LLVMFuzzerTestOneInput);
}
