#include "sentry/base/log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <ctime>

namespace seedvisor {
namespace {

std::atomic<bool> g_debug{false};
std::atomic<int> g_fd{2};

}  // namespace

void Log::Init(bool debug, const std::string& path, const std::string& command) {
  g_debug = debug || !path.empty();
  if (path.empty()) return;
  std::string p = path;
  if (p.back() == '/') p += "seedsc." + command + "." + std::to_string(getpid()) + ".log";
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) g_fd = fd;
}

bool Log::debug() { return g_debug.load(std::memory_order_relaxed); }

void Log::Write(const std::string& line) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  localtime_r(&tv.tv_sec, &t);
  std::string out = absl::StrFormat("D%02d%02d %02d:%02d:%02d.%06d %7d] %s\n", t.tm_mon + 1,
                                    t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, tv.tv_usec, getpid(),
                                    line);
  // One write per line, so concurrent threads do not interleave.
  ssize_t r = write(g_fd.load(), out.data(), out.size());
  (void)r;
}

}  // namespace seedvisor
