// Command-line flags in runsc's style: `--name=value`, `--name value`,
// `-name`, and bare `--bool` (or `--bool=false`).
//
//   FlagSet fs("do");
//   fs.String("cwd", &cwd, "working directory");
//   absl::StatusOr<std::vector<std::string>> rest = fs.Parse(args);
#ifndef SEEDVISOR_RUNSC_FLAGS_H_
#define SEEDVISOR_RUNSC_FLAGS_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace seedvisor::runsc {

class FlagSet {
 public:
  explicit FlagSet(std::string command) : command_(std::move(command)) {}

  void String(const std::string& name, std::string* value, std::string help);
  void Bool(const std::string& name, bool* value, std::string help);
  // A string flag restricted to `choices`.
  void Choice(const std::string& name, std::string* value, std::vector<std::string> choices,
              std::string help);

  // Parses flags up to the first non-flag argument (or "--"); returns the
  // rest. With `stop_at_positional` false, flags after positionals are
  // parsed too (runsc's subcommands take flags first only, like Go's flag).
  absl::StatusOr<std::vector<std::string>> Parse(const std::vector<std::string>& args);
  std::string Usage() const;

 private:
  struct Flag {
    bool is_bool = false;
    std::function<absl::Status(const std::string&)> set;
    std::string help;
    std::string default_value;
  };
  std::string command_;
  std::map<std::string, Flag> flags_;
};

}  // namespace seedvisor::runsc

#endif  // SEEDVISOR_RUNSC_FLAGS_H_
