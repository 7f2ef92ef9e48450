// seedd's --config FILE: a JSON object whose keys are seedd's flag names
// (without the dashes) and whose values are strings, numbers or booleans,
// e.g. {"listen": "127.0.0.1:9000", "instance-memory": "256M",
// "cgroup-pool": 16}. Flags on the command line override the file; an
// error names the file and the key.
//
//   std::string path = ConfigPath(args);            // --config=F / --config F
//   ASSIGN_OR_RETURN(Config c, ReadConfig(path, {"listen", "state-dir", ...}));
//   c.Args()  -> {"--listen=127.0.0.1:9000", ...}  (parse before the command line's)
//   c.Where("listen", args, value) -> "F: key \"listen\" (127.0.0.1:9000)" or "--listen=..."
#ifndef SEEDVISOR_SEEDD_CONFIG_H_
#define SEEDVISOR_SEEDD_CONFIG_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace seedvisor::seedd {

struct Config {
  std::string path;                           // "" = no config file
  std::map<std::string, std::string> values;  // flag name -> value

  // The values as flags, "--name=value".
  std::vector<std::string> Args() const;
  // Where the value a flag has now came from, for an error message: the
  // file and key when the file set it and `cmdline` did not, else
  // "--name=value".
  std::string Where(const std::string& name, const std::vector<std::string>& cmdline,
                    const std::string& value) const;
};

// The FILE of --config=FILE or --config FILE in args; "" when absent.
std::string ConfigPath(const std::vector<std::string>& args);
// Whether args sets flag `name` (--name, -name, --name=..., -name=...).
bool SetsFlag(const std::vector<std::string>& args, const std::string& name);
// Reads `path` ("" = an empty Config). Errors name the file, and the key
// when one is wrong (unknown, "config" itself, or not a string, number or
// boolean).
absl::StatusOr<Config> ReadConfig(const std::string& path, const std::set<std::string>& known);

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_CONFIG_H_
