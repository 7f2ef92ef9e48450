// The python branch of the seed tree and the invoke path that forks from it.
//
//   L1 "python-l1": python3 running runtimes/python's entry program, json,
//      re, decimal and asyncio imported, paused while blocked reading its
//      channel. Booted once at start (FRI Create + Pause).
//   L2 "python-l2-NAME-vN": L1 forked, function NAME's code imported, then
//      paused again (Promote; seedd promotes a function after its
//      --promote-after'th call, off the request path).
//
// A call forks an instance from the deepest seed holding the function (L2,
// else L1 with the code in the request), with the request already in its
// stdin pipe, reads the reply frame, and destroys the instance at once.
//
//   PythonSeeds py(sandboxes, {.log_path = ...});
//   RETURN_IF_ERROR(py.BootL1());
//   CallResult r = py.Call(fn, "{\"x\": 1}", absl::Seconds(30));
#ifndef SEEDVISOR_SEEDD_PYTHON_SEEDS_H_
#define SEEDVISOR_SEEDD_PYTHON_SEEDS_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fri/sandboxes.h"
#include "seedd/channel.h"
#include "seedd/functions.h"

namespace seedvisor::seedd {

struct PythonSeedsOptions {
  std::string python = "/usr/bin/python3";
  std::string log_path;  // the sandboxes' stderr (must exist)
};

struct CallResult {
  absl::Status status;  // DeadlineExceeded, Unavailable (instance died), or the fork's error
  std::string reply;    // the runtime's reply frame (JSON) when status is ok
  std::string seed;     // the seed the instance was forked from
  bool forked = false;  // false: no instance was made (status says why)
  std::vector<std::pair<std::string, absl::Duration>> phases;  // fork, run, destroy
};

class PythonSeeds {
 public:
  PythonSeeds(fri::Sandboxes& sandboxes, PythonSeedsOptions o);
  ~PythonSeeds();  // Stop()

  // Boots and pauses the L1 seed; progress on stderr.
  absl::Status BootL1();
  CallResult Call(const Function& fn, const std::string& event_json, absl::Duration timeout);
  // Starts making fn's L2 seed on a thread of its own (once per version).
  void PromoteAsync(std::shared_ptr<const Function> fn);
  // Forgets (and destroys) the L2 seeds of `name` older than `version`.
  void DropOldL2(const std::string& name, uint64_t version);
  // seed id -> (function, version) of every L2 seed, plus the L1's id.
  std::map<std::string, std::pair<std::string, uint64_t>> L2Seeds();
  std::string l1_id() const { return kL1Id; }
  // Waits for promotions in flight; no new ones start.
  void Stop();

  static constexpr char kL1Id[] = "python-l1";

 private:
  struct Seed {
    std::string id;
    uint64_t version = 0;
    std::unique_ptr<Channel> channel;  // the seed's own, kept open while it lives
  };
  void Promote(std::shared_ptr<const Function> fn);
  std::string RequestJson(const Function& fn, bool with_files, const std::string& event_json,
                          absl::Duration timeout, bool load_only);

  fri::Sandboxes& sb_;
  const PythonSeedsOptions opts_;
  std::atomic<uint64_t> next_instance_{1};
  std::unique_ptr<Channel> l1_channel_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Seed> l2_ ABSL_GUARDED_BY(mu_);  // by function name
  std::map<std::string, uint64_t> promoting_ ABSL_GUARDED_BY(mu_);  // name -> version
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

// The runtime's source (runtimes/python/seedvisor_entry.py, embedded).
extern const char kPythonEntrySource[];

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_PYTHON_SEEDS_H_
