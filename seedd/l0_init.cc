#include "seedd/l0_init.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "seedd/channel.h"

namespace seedvisor::seedd {
namespace {

// No frame larger than this is an exec request (a runtime's entry program
// is passed in argv: tens of KiB).
constexpr uint32_t kMaxExecFrame = 4 << 20;

// Reads exactly n bytes from fd 0 and no more: what follows is the
// runtime's.
bool ReadExact(char* p, size_t n) {
  while (n > 0) {
    ssize_t r = read(0, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void Answer(const nlohmann::json& j) {
  std::string f = Frame(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  for (size_t off = 0; off < f.size();) {
    ssize_t w = write(1, f.data() + off, f.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += static_cast<size_t>(w);
  }
}

int Refuse(const std::string& why) {
  Answer({{"error", "level-0 init: " + why}});
  return 127;
}

}  // namespace

std::string L0ExecFrame(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::string payload;
  for (const std::string& a : args) payload.append(a).push_back('\0');
  payload.push_back('\0');
  for (const std::string& e : env) payload.append(e).push_back('\0');
  return Frame(payload);
}

int L0InitMain() {
  Answer({{"ready", true}, {"level", 0}, {"pid", getpid()}});
  // The seed is paused here, blocked in this read; each fork reads its own
  // stdin.
  unsigned char len[4];
  if (!ReadExact(reinterpret_cast<char*>(len), sizeof(len))) return Refuse("stdin ended before an exec frame");
  const uint32_t n = (uint32_t{len[0]} << 24) | (uint32_t{len[1]} << 16) | (uint32_t{len[2]} << 8) | len[3];
  if (n == 0 || n > kMaxExecFrame) return Refuse("exec frame of " + std::to_string(n) + " bytes");
  std::string payload(n, '\0');
  if (!ReadExact(payload.data(), n)) return Refuse("stdin ended inside the exec frame");
  if (payload.back() != '\0') return Refuse("exec frame does not end with NUL");
  // Split at NULs: argv up to the first empty string, then env.
  std::vector<char*> argv, envp;
  bool in_env = false;
  for (size_t i = 0; i < payload.size();) {
    char* s = payload.data() + i;
    const size_t len_s = std::strlen(s);
    if (len_s == 0 && !in_env) {
      in_env = true;
    } else if (len_s > 0) {
      (in_env ? envp : argv).push_back(s);
    }
    i += len_s + 1;
  }
  if (argv.empty() || argv[0][0] != '/') return Refuse("argv[0] must be an absolute path");
  argv.push_back(nullptr);
  envp.push_back(nullptr);
  execve(argv[0], argv.data(), envp.data());
  return Refuse(std::string("exec ") + argv[0] + ": " + std::strerror(errno));
}

}  // namespace seedvisor::seedd
