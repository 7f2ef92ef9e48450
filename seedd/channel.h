// The request channel between seedd and a runtime in a sandbox
// (runtimes/python): two pipes whose far ends become the sandbox's stdin and
// stdout, carrying frames of a 4-byte big-endian length and that many bytes
// of JSON. The far ends travel to the sandbox as /proc/<seedd>/fd/N paths.
//
//   ASSIGN_OR_RETURN(Channel ch, Channel::Make());
//   fork with stdio {ch.FarPath(ch.req_r), ch.FarPath(ch.resp_w), log};
//   ch.CloseFarEnds();
//   const Deadline deadline = Deadline::In(timeout);  // monotonic: issue 10
//   RETURN_IF_ERROR(WriteAll(ch.req_w, Frame(json), deadline));
//   ASSIGN_OR_RETURN(std::string reply, ReadFrame(ch.resp_r, deadline));
#ifndef SEEDVISOR_SEEDD_CHANNEL_H_
#define SEEDVISOR_SEEDD_CHANNEL_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sentry/base/deadline.h"

namespace seedvisor::seedd {

using sentry::Deadline;
using sentry::MonotonicNow;

inline constexpr size_t kMaxFrameBytes = 64 << 20;

class Channel {
 public:
  static absl::StatusOr<Channel> Make();
  Channel(Channel&& o) noexcept;
  Channel& operator=(Channel&&) = delete;
  Channel(const Channel&) = delete;
  ~Channel();

  static std::string FarPath(int fd);  // /proc/<our pid>/fd/<fd>
  void CloseFarEnds();

  int req_r = -1, req_w = -1;    // requests: we write req_w (non-blocking)
  int resp_r = -1, resp_w = -1;  // replies: we read resp_r

 private:
  Channel() = default;
};

std::string Frame(absl::string_view json);

// Writes what fits in the pipe now; returns how many bytes that was.
size_t WriteNow(int fd, absl::string_view data);
// Writes all of `data` by `deadline` (DeadlineExceeded after; Unavailable
// when the reader is gone).
absl::Status WriteAll(int fd, absl::string_view data, Deadline deadline);
// One frame's JSON. DeadlineExceeded at `deadline`, Unavailable on EOF (the
// runtime exited), InvalidArgument for a frame over kMaxFrameBytes.
absl::StatusOr<std::string> ReadFrame(int fd, Deadline deadline);

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_CHANNEL_H_
