// Command-line flags in runsc's style: `--name=value`, `--name value`,
// `-name`, and bare `--bool` (or `--bool=false`); runc's one-letter
// aliases (`-b DIR` for `--bundle DIR`); `-h`/`--help` asks for the usage.
//
//   FlagSet fs("run");
//   fs.String("bundle", &bundle, "path to the bundle");
//   fs.Alias("b", "bundle");
//   absl::StatusOr<std::vector<std::string>> rest = fs.Parse(args);
//   if (fs.help_requested()) std::fputs(fs.Usage().c_str(), stdout);
//
// Not gflags (which the design lists): gflags keeps one process-wide registry
// of flags, so subcommands cannot have their own flag sets and `help CMD` its
// own usage. It also parses flags after positional arguments and takes
// `--noFLAG`, so `seedsc exec ID ls -l` would give `-l` to gflags, not to ls,
// where Go's flag package (and runsc) stops at the first positional argument.
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
  // `-short` (or `--short`) means the flag `name`, which must exist.
  void Alias(const std::string& short_name, const std::string& name);

  // Parses flags up to the first non-flag argument (or "--"); returns the
  // rest. With `stop_at_positional` false, flags after positionals are
  // parsed too (runsc's subcommands take flags first only, like Go's flag).
  absl::StatusOr<std::vector<std::string>> Parse(const std::vector<std::string>& args);
  std::string Usage() const;
  const std::string& command() const { return command_; }
  // Parse met -h, -help or --help (none of them a flag of this set): the
  // caller prints Usage() instead of running the command.
  bool help_requested() const { return help_requested_; }

 private:
  struct Flag {
    bool is_bool = false;
    std::function<absl::Status(const std::string&)> set;
    std::string help;
    std::string default_value;
  };
  std::string command_;
  std::map<std::string, Flag> flags_;
  std::map<std::string, std::string> aliases_;  // short name -> flag name
  bool help_requested_ = false;
};

}  // namespace seedvisor::runsc

#endif  // SEEDVISOR_RUNSC_FLAGS_H_
