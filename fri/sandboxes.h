// The sandboxes of one node, as FRI serves them (fri.proto documents every
// operation and field): boot level-0 sandboxes with `seedsc`, fork seeds
// through their control sockets, pause, destroy at once, and report memory.
// seedd calls it in process on the invoke path; fri::Server exposes the same
// object over ttrpc.
//
//   fri::Sandboxes sb({.seedsc = "/usr/bin/seedsc", .root = "/run/seedd/seedsc"});
//   sb.CleanLeftovers();                          // an old run's sandboxes
//   v1::ForkRequest req; req.set_seed_id("py-l1"); req.set_new_id("i-1"); ...
//   absl::StatusOr<v1::ForkResponse> r = sb.Fork(req);
//   sb.Destroy("i-1");
//
// Thread-safe. Forks of one seed go out on one ttrpc connection to it (the
// seed serves them one at a time).
#ifndef SEEDVISOR_FRI_SANDBOXES_H_
#define SEEDVISOR_FRI_SANDBOXES_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "fri/fri.pb.h"
#include "runsc/container/state.h"
#include "shim/ttrpc/client.h"

namespace seedvisor::fri {

namespace v1 = ::seedvisor::fri::v1;

struct SandboxesOptions {
  std::string seedsc;  // the seedsc binary (absolute)
  std::string root;    // seedsc --root for every sandbox (made if missing)
  std::vector<std::string> seedsc_flags;  // global flags, e.g. --platform=ptrace
};

class Sandboxes {
 public:
  explicit Sandboxes(SandboxesOptions o);
  ~Sandboxes();  // leaves the sandboxes running: call DestroyAll() first
  Sandboxes(const Sandboxes&) = delete;
  Sandboxes& operator=(const Sandboxes&) = delete;

  // Kills every sandbox recorded under the root by an earlier run and
  // removes its state; returns how many there were.
  absl::StatusOr<int> CleanLeftovers();

  absl::StatusOr<v1::CreateResponse> Create(const v1::CreateRequest& req);
  // `packet_fd`: the AF_PACKET socket of req.net_device, sent to the seed
  // with the request (a copy: the caller keeps and closes its own).
  absl::StatusOr<v1::ForkResponse> Fork(const v1::ForkRequest& req, int packet_fd = -1);
  absl::Status Activate(const std::string& id);
  absl::Status Pause(const std::string& id);
  absl::Status Destroy(const std::string& id);
  absl::StatusOr<v1::StatsResponse> Stats(const std::string& id);
  v1::ListResponse List();

  // Destroys every sandbox, forks before their seeds.
  void DestroyAll();

  const std::string& root() const { return opts_.root; }

 private:
  struct Entry {
    container::State state;
    std::string parent;
    bool level0 = false;
    bool paused = false;
    int64_t created_ns = 0;
    uint64_t forks_served = 0;
    std::map<std::string, std::string> labels;
    std::shared_ptr<ttrpc::Client> client;  // to its control socket, made on first use
  };

  absl::StatusOr<std::shared_ptr<ttrpc::Client>> ClientFor(const std::string& id)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CheckNewId(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RunSeedsc(const std::vector<std::string>& args, const v1::Stdio& stdio,
                         const std::string& cwd);
  absl::StatusOr<std::string> WriteHostRootBundle(const std::string& id, const v1::HostRoot& hr);
  void Remove(const Entry& e);  // kills and removes the state of an entry no longer listed

  const SandboxesOptions opts_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);  // creation order
};

}  // namespace seedvisor::fri

#endif  // SEEDVISOR_FRI_SANDBOXES_H_
