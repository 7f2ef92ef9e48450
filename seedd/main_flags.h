// seedd's flags: the command line over a --config file, parsed and checked
// (the help text, `seedd --help`, is in main_flags.cc).
//
//   SeeddFlags f;
//   if (int exit_status = ParseFlags(argc, argv, f); exit_status >= 0) return exit_status;
#ifndef SEEDVISOR_SEEDD_MAIN_FLAGS_H_
#define SEEDVISOR_SEEDD_MAIN_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "seedd/gateway.h"
#include "seedd/runtime_seeds.h"

namespace seedvisor::seedd {

struct SeeddFlags {
  std::string listen = "127.0.0.1:8080";
  std::string state_dir = "/run/seedd";  // absolute, made, no trailing '/'
  std::string seedsc;                    // absolute
  std::string python_bin = "/usr/bin/python3", node_bin = "/usr/bin/node";
  std::string platform;                  // seedsc --platform, "" = its default
  std::string network = "none";          // or "sandbox"
  std::string instance_memory = "512M";  // as given (messages)
  int64_t instance_memory_bytes = 0, seed_memory_bytes = 0;
  int max_level = 2, pool_size = 0, veth_pool_size = 0;
  absl::Duration cgroup_warm;
  bool l0_fallback = true, favordynmods = true;
  GatewayOptions gopts;
  ReplicaOptions ropts;
};

// Parses argv (after a --config file it names) into `f`: -1 to run seedd,
// else the status to exit with (0 after --help, 1 after an error it printed).
int ParseFlags(int argc, char** argv, SeeddFlags& f);

// Prints "seedd: MSG" on stderr; returns 1, seedd's exit status.
int Fail(const std::string& msg);

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_MAIN_FLAGS_H_
