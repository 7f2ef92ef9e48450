#include "shim/ttrpc/client.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "sentry/base/deadline.h"
#include "shim/ttrpc/frame.h"
#include "shim/ttrpc/socket.h"
#include "shim/ttrpc/ttrpc.pb.h"

namespace seedvisor::ttrpc {

absl::StatusOr<std::unique_ptr<Client>> Client::Dial(const std::string& address) {
  absl::StatusOr<int> fd = DialUnix(address);
  if (!fd.ok()) return fd.status();
  return std::make_unique<Client>(*fd);
}

Client::Client(int fd) : fd_(fd) {
  reader_ = std::thread([this] { ReadLoop(); });
}

Client::~Client() {
  Close();
  reader_.join();
  close(fd_);
}

void Client::Close() { shutdown(fd_, SHUT_RDWR); }

bool Client::alive() {
  absl::MutexLock l(&mu_);
  return !closed_;
}

void Client::ReadLoop() {
  FrameDecoder dec;
  std::string buf(64 * 1024, '\0');
  for (;;) {
    ssize_t n = read(fd_, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    dec.Feed(buf.data(), static_cast<size_t>(n));
    Frame f;
    for (;;) {
      FrameDecoder::Result r = dec.Next(&f);
      if (r == FrameDecoder::kNeedMore) break;
      absl::Status st;
      std::string payload;
      if (r == FrameDecoder::kOversized) {
        st = absl::ResourceExhaustedError(
            absl::StrCat("response of ", f.header.length, " bytes exceeds the maximum"));
      } else if (f.header.type != kTypeResponse) {
        continue;
      } else {
        Response resp;
        if (!resp.ParseFromString(f.data)) {
          st = absl::InternalError("ttrpc: malformed response");
        } else if (resp.has_status() && resp.status().code() != 0) {
          st = absl::Status(static_cast<absl::StatusCode>(resp.status().code()),
                            resp.status().message());
        } else {
          payload = std::move(*resp.mutable_payload());
        }
      }
      absl::MutexLock l(&mu_);
      auto it = pending_.find(f.header.stream_id);
      if (it == pending_.end()) continue;  // timed out already
      Pending* p = it->second;
      p->done = true;
      p->status = st;
      p->payload = std::move(payload);
      pending_.erase(it);
      p->cv.Signal();  // under mu_: the caller's Pending lives until it is back
    }
  }
  absl::MutexLock l(&mu_);
  closed_ = true;
  for (auto& [id, p] : pending_) {
    p->done = true;
    p->status = absl::UnavailableError("ttrpc: connection closed");
    p->cv.Signal();
  }
  pending_.clear();
}

absl::StatusOr<std::string> Client::CallRaw(const std::string& service,
                                            const std::string& method,
                                            absl::string_view payload,
                                            absl::Duration timeout, const Metadata& md,
                                            const std::vector<int>& fds) {
  Request req;
  req.set_service(service);
  req.set_method(method);
  req.set_payload(std::string(payload));
  if (timeout > absl::ZeroDuration()) req.set_timeout_nano(absl::ToInt64Nanoseconds(timeout));
  for (const auto& [k, v] : md) {
    KeyValue* kv = req.add_metadata();
    kv->set_key(k);
    kv->set_value(v);
  }
  std::string body = req.SerializeAsString();
  if (body.size() > kMaxMessageSize) {
    return absl::ResourceExhaustedError(
        absl::StrCat("ttrpc: request of ", body.size(), " bytes exceeds the maximum"));
  }

  Pending p;
  uint32_t id;
  {
    absl::MutexLock l(&mu_);
    if (closed_) return absl::UnavailableError("ttrpc: connection closed");
    id = next_id_;
    next_id_ += 2;
    pending_[id] = &p;
  }
  absl::Status ws;
  {
    absl::MutexLock l(&write_mu_);
    ws = WriteAllWithFds(fd_, EncodeFrame(id, kTypeRequest, body), fds);
  }
  absl::MutexLock l(&mu_);
  if (!ws.ok() && !p.done) {
    pending_.erase(id);
    return ws;
  }
  // On the monotonic clock (mono_condvar.h): a wall-clock step neither
  // ends the call at once nor makes it wait for the step.
  const sentry::Deadline by =
      timeout > absl::ZeroDuration() ? sentry::Deadline::In(timeout) : sentry::Deadline::Never();
  if (!p.cv.Await(&mu_, absl::Condition(&p.done), by)) {
    pending_.erase(id);
    return absl::DeadlineExceededError(
        absl::StrCat("ttrpc: ", service, "/", method, " timed out"));
  }
  if (!p.status.ok()) return p.status;
  return std::move(p.payload);
}

absl::Status Client::Call(const std::string& service, const std::string& method,
                          const google::protobuf::MessageLite& req,
                          google::protobuf::MessageLite* resp, absl::Duration timeout,
                          const Metadata& md, const std::vector<int>& fds) {
  absl::StatusOr<std::string> out =
      CallRaw(service, method, req.SerializeAsString(), timeout, md, fds);
  if (!out.ok()) return out.status();
  if (resp != nullptr && !resp->ParseFromString(*out)) {
    return absl::InternalError(absl::StrCat("ttrpc: cannot parse the ", method, " response"));
  }
  return absl::OkStatus();
}

}  // namespace seedvisor::ttrpc
