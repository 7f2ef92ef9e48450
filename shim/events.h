// Publishes task events to containerd 1.6: ttrpc Forward calls to
// $TTRPC_ADDRESS (/containerd.services.events.ttrpc.v1.Events/Forward),
// in order, from one background thread, with the namespace metadata and a
// 5 s timeout, reconnecting once on failure.
//
//   Publisher pub(getenv("TTRPC_ADDRESS"), "default");
//   containerd::events::TaskStart ev; ...
//   pub.Publish("/tasks/start", ev);
//   pub.Flush(absl::Seconds(2));    // before the shim exits
//
// The Any type_url is "containerd.events.<Message>" — never PackFrom's
// "type.googleapis.com/" form, which containerd's subscribers reject.
#ifndef SEEDVISOR_SHIM_EVENTS_H_
#define SEEDVISOR_SHIM_EVENTS_H_

#include <deque>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "sentry/base/mono_condvar.h"
#include "shim/ttrpc/client.h"

namespace seedvisor::shim {

// "containerd.events.TaskExit" for a containerd::events::TaskExit.
std::string EventTypeUrl(const google::protobuf::Message& m);

class Publisher {
 public:
  // An empty address disables publishing (events are dropped).
  Publisher(std::string address, std::string ns);

  void Publish(const std::string& topic, const google::protobuf::Message& event);
  // Waits until the queue is empty (or the timeout passes).
  void Flush(absl::Duration timeout);

 private:
  struct Item {
    std::string envelope;  // serialized ForwardRequest
    std::string topic;
  };
  void Loop();
  absl::Status Send(const std::string& req);

  const std::string address_;
  const std::string ns_;
  absl::Mutex mu_;
  sentry::MonoCondVar idle_;  // signalled when an item is done with
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<ttrpc::Client> client_;  // only the loop thread uses it
};

}  // namespace seedvisor::shim

#endif  // SEEDVISOR_SHIM_EVENTS_H_
