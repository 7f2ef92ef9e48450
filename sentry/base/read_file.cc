#include "sentry/base/read_file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

namespace seedvisor {

std::string ReadFileOrEmpty(const std::string& path) {
  std::string out;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fd);
  return out;
}

}  // namespace seedvisor
