#include "seedd/channel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace seedvisor::seedd {
namespace {

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// Waits for `events` on fd until deadline; false when the deadline passed.
bool WaitFd(int fd, short events, Deadline deadline) {
  for (;;) {
    if (deadline.Passed()) return false;
    pollfd p{fd, events, 0};
    int r = poll(&p, 1, deadline.PollMs());
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return true;  // let read/write report it
  }
}

}  // namespace

absl::StatusOr<Channel> Channel::Make() {
  Channel c;
  int a[2], b[2];
  if (pipe2(a, O_CLOEXEC) != 0) return absl::ResourceExhaustedError(absl::StrCat("pipe: ", strerror(errno)));
  if (pipe2(b, O_CLOEXEC) != 0) {
    int err = errno;
    close(a[0]);
    close(a[1]);
    return absl::ResourceExhaustedError(absl::StrCat("pipe: ", strerror(err)));
  }
  c.req_r = a[0];
  c.req_w = a[1];
  c.resp_r = b[0];
  c.resp_w = b[1];
  fcntl(c.req_w, F_SETFL, O_NONBLOCK);
  return c;
}

Channel::Channel(Channel&& o) noexcept
    : req_r(o.req_r), req_w(o.req_w), resp_r(o.resp_r), resp_w(o.resp_w) {
  o.req_r = o.req_w = o.resp_r = o.resp_w = -1;
}

Channel::~Channel() {
  CloseFarEnds();
  CloseFd(req_w);
  CloseFd(resp_r);
}

std::string Channel::FarPath(int fd) { return absl::StrCat("/proc/", getpid(), "/fd/", fd); }

void Channel::CloseFarEnds() {
  CloseFd(req_r);
  CloseFd(resp_w);
}

std::string Frame(absl::string_view json) {
  uint32_t n = static_cast<uint32_t>(json.size());
  std::string out(4, '\0');
  out[0] = static_cast<char>(n >> 24);
  out[1] = static_cast<char>(n >> 16);
  out[2] = static_cast<char>(n >> 8);
  out[3] = static_cast<char>(n);
  out.append(json.data(), json.size());
  return out;
}

size_t WriteNow(int fd, absl::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += n;
  }
  return done;
}

absl::Status WriteAll(int fd, absl::string_view data, Deadline deadline) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n > 0) {
      done += n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (!WaitFd(fd, POLLOUT, deadline)) return absl::DeadlineExceededError("writing the request");
      continue;
    }
    return absl::UnavailableError(absl::StrCat("writing the request: ", strerror(errno)));
  }
  return absl::OkStatus();
}

namespace {
absl::Status ReadExact(int fd, char* buf, size_t len, Deadline deadline) {
  size_t done = 0;
  while (done < len) {
    if (!WaitFd(fd, POLLIN, deadline)) return absl::DeadlineExceededError("waiting for the reply");
    ssize_t n = read(fd, buf + done, len - done);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("reading the reply: ", strerror(errno)));
    if (n == 0) return absl::UnavailableError("the runtime closed its channel without a reply");
    done += n;
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<std::string> ReadFrame(int fd, Deadline deadline) {
  unsigned char head[4];
  if (absl::Status s = ReadExact(fd, reinterpret_cast<char*>(head), 4, deadline); !s.ok()) return s;
  size_t n = (size_t{head[0]} << 24) | (size_t{head[1]} << 16) | (size_t{head[2]} << 8) | head[3];
  if (n > kMaxFrameBytes) {
    return absl::InvalidArgumentError(absl::StrCat("reply frame of ", n, " bytes is over ", kMaxFrameBytes));
  }
  std::string body(n, '\0');
  if (absl::Status s = ReadExact(fd, body.data(), n, deadline); !s.ok()) return s;
  return body;
}

}  // namespace seedvisor::seedd
