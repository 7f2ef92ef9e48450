#include "seedd/main_flags.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "runsc/flags.h"
#include "seedd/config.h"
#include "seedd/functions.h"

namespace seedvisor::seedd {
namespace {

constexpr char kAbout[] =
    "seedd: a FaaS node. Deploy a function, invoke it over HTTP; every call runs in\n"
    "a sandbox forked (copy-on-write, no exec) from a paused seed that already runs\n"
    "the language runtime, and the sandbox is killed as soon as the handler returns.\n"
    "\n"
    "  seedd                      (--listen=127.0.0.1:8080 --state-dir=/run/seedd)\n"
    "  curl -X PUT 127.0.0.1:8080/functions/hello -d '{\"runtime\": \"python\",\n"
    "       \"handler\": \"main.handler\", \"files\": {\"main.py\":\n"
    "       \"def handler(event, context):\\n    return {\\\"hi\\\": event}\\n\"}}'\n"
    "  curl -X POST 127.0.0.1:8080/invoke/hello -d '{\"x\": 1}'\n"
    "\n"
    "Runtimes: \"python\" (handler(event, context) in main.py) always; \"node\"\n"
    "(exports.handler = async (event, context) => ... in main.js) when --node runs.\n"
    "\n"
    "HTTP: PUT /functions/NAME (deploy; optional \"timeout_ms\"), POST /invoke/NAME\n"
    "(body = JSON event; 200 result, 404 unknown function, 400 malformed JSON, 500\n"
    "handler exception with traceback, 504 deadline passed, 507 the instance went\n"
    "past --instance-memory and was killed: the answer names the limit), GET /functions,\n"
    "GET /seeds, GET /metrics (Prometheus). Invocations answer with Server-Timing\n"
    "(queue: waiting inside the seed for its earlier forks; fork; setup: the part of\n"
    "fork the new sandbox spent on its own setup, its cgroup join among it; rpc: the\n"
    "part of queue and fork in FRI's Fork (its state files and the seed's Fork RPC);\n"
    "start: a level-0 fork starting its runtime; run; destroy; total; path: the\n"
    "level forked, L0-L2).\n"
    "Cgroups: every instance runs in a cgroup of its own from a pool under\n"
    "/sys/fs/cgroup/{memory,pids,cpu}/seedd-HASH (v1), with --instance-memory as its\n"
    "memory limit; the pool is filled at start and refilled off the request path,\n"
    "and a restarted seedd removes the cgroups an earlier run left there.\n"
    "Joining a cgroup could wait for an RCU grace period (5-25 ms) when no other\n"
    "join came within one; seedd holds a cgroup v1 hierarchy of its own,\n"
    "name=seedd_favordynmods_HASH, made with the kernel's favordynmods (Linux >= 6.0),\n"
    "which spares every join on the host that wait, at a small cost to every host\n"
    "fork and exit (bench/RESULTS.md). Its mount is detached, held by seedd's fd\n"
    "only: attached nowhere, copied into no sandbox, gone with seedd (SIGKILL too).\n"
    "The switch is host-wide, and on Linux >= 6.18 it lasts until reboot: the first\n"
    "favordynmods mount switches cgroup.procs locking to a rwsem per thread group\n"
    "for the whole host (\"per threadgroup rwsem mechanism can't be disabled\", the\n"
    "kernel says when the last such hierarchy goes); before 6.18 it ends with\n"
    "seedd. stderr says at start whether seedd could (\"seedd: cgroup joins: ...\").\n"
    "--cgroup-warm (off by default) is the older way: for that long after each call\n"
    "a seedd thread moves itself into its own memory cgroup every 4 ms.\n"
    "Network: instances have loopback only unless --network=sandbox: then each one\n"
    "gets a veth of its own from a pool (its guest end served by the sandbox's own\n"
    "stack, the seeds' copy of which each fork inherits: TCP/IP secrets re-keyed per\n"
    "fork), destroyed with the instance; a call that finds the pool empty runs with\n"
    "loopback only (seedd_veth_pool_misses_total counts them). Its packet socket goes\n"
    "to the seed with the Fork request itself. On the host an instance reaches only\n"
    "what listens on its host end's own address (iptables chain SVPOOL-<prefix>),\n"
    "never a wildcard listener or another local address. The host ends' names are\n"
    "this state dir's (two seedds do not collide); a restart deletes the ones a\n"
    "killed run left.\n"
    "State: <state-dir>/seedsc (seedsc --root of every sandbox), fri.address (the\n"
    "path of the FRI socket: fri.sock, or /tmp/seedd-HASH.sock for a deep dir),\n"
    "sandboxes.log (the sandboxes' stderr). Sandboxes left by an earlier run are\n"
    "killed at start; SIGTERM/SIGINT destroy every sandbox before exiting.\n"
    "functions/NAME.json: every deployed function; a restarted seedd serves them\n"
    "again (their level-2 seeds are made again after --promote-after calls).\n"
    "Failing seeds: a Fork that fails or times out is tried again on another copy\n"
    "of the seed (a replica, or level 1 for a level-2 seed); a failing replica is\n"
    "destroyed, a level-2 seed whose Fork timed out is evicted, and a level-1 seed\n"
    "whose Fork failed is replaced by a new one (RUNTIME-l1-gN). Meanwhile, and for a\n"
    "runtime whose level-1 seed did not boot, calls fork the level-0 seed \"l0\" and\n"
    "start their runtime there (Server-Timing path;desc=\"L0\"), and promotions make\n"
    "level-2 seeds from it (--l0-fallback=false: calls wait for the new level-1 seed).\n"
    "Config: --config=FILE reads a JSON object whose keys are the flag names below\n"
    "(without dashes) and whose values are strings, integers or booleans, e.g.\n"
    "  {\"listen\": \"127.0.0.1:9000\", \"instance-memory\": \"256M\", \"cgroup-pool\": 16}\n"
    "Flags on the command line override the file; an error names the file and key.\n";

std::string DefaultSeedsc() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  for (const std::filesystem::path& p :
       {self.parent_path() / "seedsc", self.parent_path().parent_path() / "runsc" / "seedsc",
        std::filesystem::path("/usr/local/bin/seedsc"), std::filesystem::path("/usr/bin/seedsc")}) {
    if (access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "seedsc";
}


// "512M", "1G", "65536" -> bytes; -1 when malformed.
int64_t ParseBytes(const std::string& s) {
  if (s.empty()) return -1;
  int64_t mult = 1;
  std::string num = s;
  switch (s.back()) {
    case 'K': case 'k': mult = int64_t{1} << 10; break;
    case 'M': case 'm': mult = int64_t{1} << 20; break;
    case 'G': case 'g': mult = int64_t{1} << 30; break;
    default: break;
  }
  if (mult != 1) num.pop_back();
  int64_t v = 0;
  if (!absl::SimpleAtoi(num, &v) || v < 0 || v > (int64_t{1} << 50) / mult) return -1;
  return v * mult;
}

// How instances' cgroup joins stay out of the RCU grace period: favordynmods
// when it is wanted and the kernel takes it, else the warmth for `warm` (0:
// nothing). One line on stderr says which, and why not favordynmods. Returns

}  // namespace

int Fail(const std::string& msg) {
  std::fprintf(stderr, "seedd: %s\n", msg.c_str());
  return 1;
}

int ParseFlags(int argc, char** argv, SeeddFlags& f) {
  f.seedsc = DefaultSeedsc();
  std::string &listen = f.listen, &state_dir = f.state_dir, &seedsc = f.seedsc;
  std::string &python_bin = f.python_bin, &node_bin = f.node_bin, config_path;
  std::string& instance_memory = f.instance_memory;
  std::string pool_size_s = "8", cgroup_warm_s = "0";
  std::string timeout_s = "30s", promote_s = "2";
  std::string& platform = f.platform;
  std::string replicas_s = "4", replica_idle_s = "30s", seed_memory = "1G", promote_window_s = "10m";
  std::string max_level_s = "2", veth_pool_s = "4";
  std::string& network = f.network;
  bool &l0_fallback = f.l0_fallback, &favordynmods = f.favordynmods;
  std::set<std::string> names;  // the flags a config file may set
  auto define = [&](runsc::FlagSet& fs) {
    auto flag = [&](const char* name, std::string* v, const char* help) {
      fs.String(name, v, help);
      names.insert(name);
    };
    flag("listen", &listen, "HTTP address, IPv4 HOST:PORT");
    flag("state-dir", &state_dir, "directory for seedd's state: sandboxes, deployed functions, FRI socket");
    flag("seedsc", &seedsc, "the seedsc binary");
    flag("python", &python_bin, "the python3 interpreter the python seed runs");
    flag("node", &node_bin,
         "the node binary the node seed runs (no node seed when it does not run; \"\" = none)");
    flag("timeout", &timeout_s, "deadline of a call unless its function sets timeout_ms (e.g. 30s, 500ms)");
    flag("promote-after", &promote_s,
         "calls of a function within --promote-window after which it gets its own level-2 seed "
         "(0 = never; at most 64)");
    flag("promote-window", &promote_window_s, "the window of --promote-after (e.g. 10m, 30s)");
    flag("seed-memory", &seed_memory,
         "budget of the seeds' memory (PSS of every seed: L1, L2, replicas; e.g. 1G; 0 = none): over "
         "it, the least recently used level-2 seed is destroyed and its function served from level 1");
    flag("instance-memory", &instance_memory,
         "memory limit of each instance's cgroup (e.g. 256M, 1G; 0 = none); a call past it answers 507");
    flag("cgroup-pool", &pool_size_s, "cgroups kept ready for instances (0 = no pool: instances "
         "run in their seed's cgroup)");
    flag("cgroup-warm", &cgroup_warm_s,
         "how long after a call a seedd thread keeps instances' cgroup joins fast by a no-op "
         "migration of itself every 4 ms (e.g. 30s; 0 = never); not needed, and not started, "
         "while --cgroup-favordynmods is on");
    fs.Bool("cgroup-favordynmods", &favordynmods,
            "while seedd runs, keep the kernel's cgroup migrations out of the RCU grace period "
            "(5-25 ms a join otherwise may wait) with a cgroup v1 hierarchy of seedd's own made "
            "with favordynmods, its mount detached (held by seedd's fd, attached nowhere); every "
            "fork and exit on the host takes a slightly slower path meanwhile (bench/RESULTS.md); "
            "on Linux >= 6.18 the first such mount switches cgroup.procs locking host-wide until "
            "reboot. If the kernel refuses (no fsopen, no favordynmods: Linux < 6.0), stderr says "
            "why and seedd runs without");
    names.insert("cgroup-favordynmods");
    flag("seed-replicas", &replicas_s,
         "copies a seed may have (itself included): when forks from one seed queue up, seedd forks "
         "it a paused replica and spreads forks over them (1 = no replicas)");
    flag("replica-idle", &replica_idle_s, "a seed replica unused this long is destroyed");
    flag("platform", &platform, "seedsc --platform for the sandboxes (\"\" = seedsc's default)");
    flag("max-level", &max_level_s,
         "the deepest seed level calls fork from: 2 = level-2 seeds of promoted functions, else level 1; "
         "1 = level 1 only (as --promote-after=0); 0 = a level-0 seed (a sandbox with no runtime yet) "
         "booted instead of the level-1 seeds, each call starting its runtime in its fork");
    flag("network", &network,
         "the instances' network: none (loopback only, the default) or sandbox (each instance "
         "gets a device of its own from a pool of --veth-pool network namespaces, each with a "
         "veth whose host end svpXXXX<N> (XXXX from the state dir) in seedd's namespace has "
         "10.203.<N>.1/24 and whose guest end the instance's own stack serves as "
         "10.203.<N>.2/24, no default route; a subnet another interface has is skipped; "
         "destroyed, never reused, when the instance is; an empty pool gives a call loopback "
         "only, never a device made on its path). The guest reaches on the host only a "
         "listener bound to its host end's own address (not 0.0.0.0, not another local "
         "address) and answers to connections the host opened; nothing is forwarded. "
         "Needs root and iptables");
    flag("veth-pool", &veth_pool_s,
         "with --network=sandbox: devices kept ready (1-64; made serially at start, refilled off "
         "the request path)");
    fs.Bool("l0-fallback", &l0_fallback,
            "boot a level-0 seed (a sandbox with no runtime yet) beside the level-1 seeds: a runtime whose "
            "level-1 seed cannot fork (it failed to boot, failed a Fork, is stuck or being replaced) starts "
            "in a fork of it instead, and its level-2 seeds are made from it; false = such calls wait for a "
            "new level-1 seed");
    names.insert("l0-fallback");
  };
  runsc::FlagSet fs("seedd");
  define(fs);
  fs.String("config", &config_path,
            "a JSON file of flag name -> value, e.g. {\"listen\": \"127.0.0.1:9000\", \"cgroup-pool\": 16}; "
            "flags given here override it");
  std::vector<std::string> args(argv + 1, argv + argc);
  // The config file first (into the same variables), then the command line.
  absl::StatusOr<Config> config = ReadConfig(ConfigPath(args), names);
  if (!config.ok() && !SetsFlag(args, "help") && !SetsFlag(args, "h")) {
    return Fail(std::string(config.status().message()));
  }
  if (config.ok() && !config->path.empty()) {
    runsc::FlagSet from_file("seedd");
    define(from_file);
    for (const std::string& a : config->Args()) {
      if (absl::StatusOr<std::vector<std::string>> r = from_file.Parse({a}); !r.ok()) {
        std::string key = a.substr(2, a.find('=') - 2);
        return Fail(absl::StrCat(config->path, ": key \"", key, "\": ", r.status().message()));
      }
    }
  }
  absl::StatusOr<std::vector<std::string>> rest = fs.Parse(args);
  if (fs.help_requested()) {
    std::fputs(kAbout, stdout);
    std::fputs("\nFlags:\n", stdout);
    std::string usage = fs.Usage();
    if (!usage.empty() && usage.back() != '\n') usage += '\n';
    std::fputs(usage.c_str(), stdout);
    return 0;
  }
  if (!rest.ok()) return Fail(std::string(rest.status().message()));
  if (!rest->empty()) return Fail(absl::StrCat("unexpected argument \"", (*rest)[0], "\" (see seedd --help)"));
  // Where a value came from, for errors: "--flag=V" or "FILE: key \"flag\" (V)".
  auto where = [&](const char* name, const std::string& v) { return config->Where(name, args, v); };
  if (listen.empty()) return Fail(absl::StrCat(where("listen", listen), ": empty (e.g. 127.0.0.1:8080)"));
  if (state_dir.empty()) return Fail(absl::StrCat(where("state-dir", state_dir), ": empty (e.g. /run/seedd)"));
  GatewayOptions& gopts = f.gopts;
  if (!absl::ParseDuration(timeout_s, &gopts.timeout) || gopts.timeout <= absl::ZeroDuration()) {
    return Fail(absl::StrCat(where("timeout", timeout_s), ": not a positive duration (e.g. 30s)"));
  }
  if (!absl::SimpleAtoi(promote_s, &gopts.promote_after) || gopts.promote_after > Functions::kRecentCalls) {
    return Fail(absl::StrCat(where("promote-after", promote_s), ": not a number from 0 to 64"));
  }
  if (!absl::ParseDuration(promote_window_s, &gopts.promote_window) ||
      gopts.promote_window <= absl::ZeroDuration()) {
    return Fail(absl::StrCat(where("promote-window", promote_window_s), ": not a positive duration (e.g. 10m)"));
  }
  int& max_level = f.max_level;
  if (!absl::SimpleAtoi(max_level_s, &max_level) || max_level < 0 || max_level > 2) {
    return Fail(absl::StrCat(where("max-level", max_level_s), ": not 0, 1 or 2"));
  }
  if (max_level < 2) gopts.promote_after = 0;
  int64_t& seed_memory_bytes = f.seed_memory_bytes;
  seed_memory_bytes = ParseBytes(seed_memory);
  if (seed_memory_bytes < 0) {
    return Fail(absl::StrCat(where("seed-memory", seed_memory), ": not a size (e.g. 1G)"));
  }
  int64_t& instance_memory_bytes = f.instance_memory_bytes;
  instance_memory_bytes = ParseBytes(instance_memory);
  if (instance_memory_bytes < 0) {
    return Fail(absl::StrCat(where("instance-memory", instance_memory), ": not a size (e.g. 256M)"));
  }
  int& pool_size = f.pool_size;
  if (!absl::SimpleAtoi(pool_size_s, &pool_size) || pool_size < 0 || pool_size > 4096) {
    return Fail(absl::StrCat(where("cgroup-pool", pool_size_s), ": not a number from 0 to 4096"));
  }
  absl::Duration& cgroup_warm = f.cgroup_warm;
  if (!absl::ParseDuration(cgroup_warm_s, &cgroup_warm) || cgroup_warm < absl::ZeroDuration()) {
    return Fail(absl::StrCat(where("cgroup-warm", cgroup_warm_s), ": not a duration (e.g. 30s, 0)"));
  }
  int& veth_pool_size = f.veth_pool_size;
  if (network != "none" && network != "sandbox") {
    return Fail(absl::StrCat(where("network", network), ": not none or sandbox"));
  }
  if (!absl::SimpleAtoi(veth_pool_s, &veth_pool_size) || veth_pool_size < 1 ||
      veth_pool_size > 64) {
    return Fail(absl::StrCat(where("veth-pool", veth_pool_s), ": not a number from 1 to 64"));
  }
  ReplicaOptions& ropts = f.ropts;
  if (!absl::SimpleAtoi(replicas_s, &ropts.max_replicas) || ropts.max_replicas < 1 || ropts.max_replicas > 64) {
    return Fail(absl::StrCat(where("seed-replicas", replicas_s), ": not a number from 1 to 64"));
  }
  if (!absl::ParseDuration(replica_idle_s, &ropts.replica_idle) || ropts.replica_idle < absl::ZeroDuration()) {
    return Fail(absl::StrCat(where("replica-idle", replica_idle_s), ": not a duration (e.g. 30s)"));
  }
  if (access(seedsc.c_str(), X_OK) != 0) {
    return Fail(absl::StrCat(where("seedsc", seedsc), ": not an executable (build //runsc:seedsc)"));
  }
  seedsc = std::filesystem::absolute(seedsc).string();  // seedsc runs in other directories
  std::error_code ec;
  std::filesystem::create_directories(state_dir, ec);
  if (ec) return Fail(absl::StrCat(where("state-dir", state_dir), ": ", ec.message()));
  state_dir = std::filesystem::absolute(state_dir).lexically_normal().string();
  if (state_dir.size() > 1 && state_dir.back() == '/') state_dir.pop_back();
  return -1;
}

}  // namespace seedvisor::seedd
