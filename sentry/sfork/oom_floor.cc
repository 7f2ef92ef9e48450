#include "sentry/sfork/oom_floor.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sentry/base/log.h"

namespace seedvisor::sentry {
namespace {

constexpr char kPath[] = "/proc/self/oom_score_adj";

// Writes `value`; errno on failure, 0 on success.
int WriteOwn(const std::string& value) {
  const int fd = open(kPath, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  const bool ok = write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  const int err = ok ? 0 : errno;
  close(fd);
  return err;
}

}  // namespace

OwnOomScoreAdj LowerOomFloorForAnchors() {
  OwnOomScoreAdj own;
  const int fd = open(kPath, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return own;
  char buf[16];
  const ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n <= 0) return own;
  std::string value(buf, static_cast<size_t>(n));
  while (!value.empty() && value.back() == '\n') value.pop_back();
  if (value == "-1000") return own;  // the floor is there already
  if (int err = WriteOwn("-1000"); err != 0) {
    Log::Debug("oom_score_adj: the floor for sandbox fork anchors stays (%s)", std::strerror(err));
    return own;
  }
  own.value = std::move(value);
  return own;
}

void RestoreOwnOomScoreAdj(const OwnOomScoreAdj& own) {
  if (own.value.empty()) return;
  // Raising needs no capability.
  if (int err = WriteOwn(own.value); err != 0) {
    Log::Warning("oom_score_adj: going back to %s failed (%s): the sandbox stays at -1000",
                 own.value, std::strerror(err));
  }
}

}  // namespace seedvisor::sentry
