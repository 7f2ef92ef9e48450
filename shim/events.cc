#include "shim/events.h"

#include <thread>

#include "google/protobuf/util/time_util.h"
#include "sentry/base/deadline.h"
#include "shim/log.h"
#include "shim/proto/events_service.pb.h"

namespace seedvisor::shim {

std::string EventTypeUrl(const google::protobuf::Message& m) {
  return m.GetDescriptor()->full_name();
}

Publisher::Publisher(std::string address, std::string ns)
    : address_(std::move(address)), ns_(std::move(ns)) {
  if (!address_.empty()) std::thread([this] { Loop(); }).detach();
}

void Publisher::Publish(const std::string& topic, const google::protobuf::Message& event) {
  if (address_.empty()) return;
  containerd::services::events::ttrpc::v1::ForwardRequest req;
  auto* env = req.mutable_envelope();
  *env->mutable_timestamp() = google::protobuf::util::TimeUtil::GetCurrentTime();
  env->set_namespace_(ns_);
  env->set_topic(topic);
  env->mutable_event()->set_type_url(EventTypeUrl(event));
  env->mutable_event()->set_value(event.SerializeAsString());
  absl::MutexLock l(&mu_);
  queue_.push_back({req.SerializeAsString(), topic});
}

void Publisher::Flush(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return queue_.empty() && !busy_; };
  idle_.Await(&mu_, absl::Condition(&idle), sentry::Deadline::In(timeout));  // issue 10
}

absl::Status Publisher::Send(const std::string& req) {
  if (client_ == nullptr || !client_->alive()) {
    auto c = ttrpc::Client::Dial(address_);
    if (!c.ok()) return c.status();
    client_ = std::move(*c);
  }
  return client_
      ->CallRaw("containerd.services.events.ttrpc.v1.Events", "Forward", req,
                absl::Seconds(5), {{"containerd-namespace-ttrpc", ns_}})
      .status();
}

void Publisher::Loop() {
  for (;;) {
    Item item;
    {
      absl::MutexLock l(&mu_);
      mu_.Await(absl::Condition(
          +[](std::deque<Item>* q) { return !q->empty(); }, &queue_));
      item = queue_.front();
      busy_ = true;
    }
    absl::Status st = Send(item.envelope);
    if (!st.ok()) {
      client_.reset();
      st = Send(item.envelope);  // once more on a fresh connection
    }
    if (!st.ok()) ShimLog("publish %s: %s", item.topic, st.ToString());
    absl::MutexLock l(&mu_);
    queue_.pop_front();
    busy_ = false;
    idle_.SignalAll();
  }
}

}  // namespace seedvisor::shim
