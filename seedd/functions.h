// The functions deployed on this node: `PUT /functions/NAME` with
//   {"runtime": "python", "handler": "main.handler",
//    "files": {"main.py": "<source>", ...}, "timeout_ms": 2000}
// or {"runtime": "node", "handler": "main.handler", "files": {"main.js": ...}}
// ("timeout_ms" optional: the call's deadline instead of seedd's --timeout).
// Every deploy of a name makes a new version; calls and seeds name the
// version they serve. With a directory, every deploy is saved there as
// NAME.json ({"version": N, "deploy": <the deploy body>}) and Load() serves
// them again after a restart.
//
//   Functions functions("/run/seedd/functions");
//   ASSIGN_OR_RETURN(int n, functions.Load());     // an earlier run's
//   ASSIGN_OR_RETURN(Function f, ParseDeploy("hello", body));
//   ASSIGN_OR_RETURN(std::shared_ptr<const Function> now, functions.Put(std::move(f)));
#ifndef SEEDVISOR_SEEDD_FUNCTIONS_H_
#define SEEDVISOR_SEEDD_FUNCTIONS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sentry/base/mono_clock.h"

namespace seedvisor::seedd {

struct Function {
  std::string name;
  std::string runtime;  // "python" or "node"
  std::string handler;  // "module.function"
  std::map<std::string, std::string> files;  // path -> source
  absl::Duration timeout = absl::ZeroDuration();  // zero: seedd's --timeout
  uint64_t version = 0;  // set by Functions::Put, from 1
};

// Names: [A-Za-z0-9_-]{1,64} (they become parts of sandbox ids).
absl::Status ValidateFunctionName(const std::string& name);

// The function in a deploy body; InvalidArgument naming the field that is wrong.
absl::StatusOr<Function> ParseDeploy(const std::string& name, const std::string& body);

// f as a deploy body (ParseDeploy(f.name, DeployJson(f)) gives f back).
std::string DeployJson(const Function& f);

class Functions {
 public:
  // dir: where deploys are saved ("" = kept in memory only).
  explicit Functions(std::string dir = "") : dir_(std::move(dir)) {}
  // Serves the functions saved under dir; returns how many. A file that
  // does not parse is an error naming it.
  absl::StatusOr<int> Load();
  // Stores f as the next version of its name (saved first, when there is a
  // dir); returns what was stored.
  absl::StatusOr<std::shared_ptr<const Function>> Put(Function f);
  std::shared_ptr<const Function> Get(const std::string& name) const;
  // Counts a finished call (at `now`); returns the count for this version.
  uint64_t CountCall(const Function& f, absl::Duration now = sentry::MonotonicNow());
  // How many of the current version's last kRecentCalls calls were made in
  // the `window` before `now`.
  uint64_t RecentCalls(const Function& f, absl::Duration window,
                       absl::Duration now = sentry::MonotonicNow()) const;
  static constexpr size_t kRecentCalls = 64;
  std::vector<std::shared_ptr<const Function>> All() const;
  uint64_t Calls(const Function& f) const;

 private:
  const std::string dir_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<const Function>> by_name_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> calls_ ABSL_GUARDED_BY(mu_);  // of the current version
  std::map<std::string, std::deque<absl::Duration>> recent_ ABSL_GUARDED_BY(mu_);  // its last calls' MonotonicNow()
  uint64_t next_version_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_FUNCTIONS_H_
