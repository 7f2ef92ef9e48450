// seedd: the FaaS node daemon. Boots the python (and node) seed trees, then answers
// HTTP invocations on --listen from sandboxes forked for each call, and
// serves FRI (fri/fri.proto) on <--state-dir>/fri.sock.
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "fri/sandboxes.h"
#include "fri/server.h"
#include "seedd/cgroup_favor.h"
#include "seedd/cgroup_pool.h"
#include "seedd/functions.h"
#include "seedd/gateway.h"
#include "seedd/http_server.h"
#include "seedd/l0_init.h"
#include "seedd/main_flags.h"
#include "seedd/runtime_seeds.h"
#include "seedd/seed_budget.h"
#include "seedd/veth_pool.h"
#include "sentry/base/mono_clock.h"
#include "shim/ttrpc/server.h"

namespace seedvisor::seedd {
namespace {

// Whether `bin --version` exits 0 (the node seed is optional).
bool Runs(const std::string& bin) {
  if (bin.empty() || access(bin.c_str(), X_OK) != 0) return false;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::string version = "--version";
  char* argv[] = {const_cast<char*>(bin.c_str()), version.data(), nullptr};
  pid_t pid = -1;
  int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return false;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// the warmth's linger.
absl::Duration ChooseCgroupJoins(bool want_favor, absl::Duration warm, CgroupFavor& favor) {
  std::string why = "--cgroup-favordynmods=false";
  if (want_favor) {
    absl::Status s = favor.Start();
    if (s.ok()) {
      std::fprintf(stderr, "seedd: cgroup joins: favordynmods (cgroup v1 hierarchy name=%s, a "
                   "detached mount held by seedd only): no join waits for an RCU grace period; "
                   "host forks and exits take the cgroup rwsem's slower path while seedd runs "
                   "(on Linux >= 6.18 host-wide until reboot)%s\n",
                   favor.name().c_str(),
                   warm > absl::ZeroDuration() ? "; --cgroup-warm is not needed: not started" : "");
      return absl::ZeroDuration();
    }
    why = absl::StrCat("favordynmods unavailable: ", s.message());
  }
  if (warm > absl::ZeroDuration()) {
    std::fprintf(stderr, "seedd: cgroup joins: --cgroup-warm=%s (%s): a seedd thread migrates "
                 "itself every 4 ms for that long after each call\n",
                 absl::FormatDuration(warm).c_str(), why.c_str());
  } else {
    std::fprintf(stderr, "seedd: cgroup joins: nothing keeps them fast (%s): a call may wait 5-25 "
                 "ms for an RCU grace period to join its cgroup (--cgroup-warm=30s keeps them "
                 "fast while calls come)\n", why.c_str());
  }
  return warm;
}

int Main(int argc, char** argv) {
  // Inside a level-0 seed (its init, see seedd/l0_init.h): not a daemon.
  if (argc == 2 && std::string(argv[1]) == "l0-init") return L0InitMain();
  SeeddFlags f;
  if (int exit_status = ParseFlags(argc, argv, f); exit_status >= 0) return exit_status;
  const std::string &listen = f.listen, &state_dir = f.state_dir;
  const std::string &python_bin = f.python_bin, &node_bin = f.node_bin;
  const std::string &seedsc = f.seedsc, &platform = f.platform;
  const std::string &instance_memory = f.instance_memory, &network = f.network;
  const int max_level = f.max_level, pool_size = f.pool_size, veth_pool_size = f.veth_pool_size;
  const int64_t seed_memory_bytes = f.seed_memory_bytes, instance_memory_bytes = f.instance_memory_bytes;
  const bool l0_fallback = f.l0_fallback, favordynmods = f.favordynmods;
  const ReplicaOptions& ropts = f.ropts;
  GatewayOptions& gopts = f.gopts;
  absl::Duration cgroup_warm = f.cgroup_warm;
  std::error_code ec;

  // Signals: SIGTERM/SIGINT are taken by sigwait below; SIGPIPE never kills us.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string log_path = state_dir + "/sandboxes.log";
  { std::ofstream(log_path, std::ios::app); }
  fri::SandboxesOptions sopts{.seedsc = seedsc, .root = state_dir + "/seedsc", .seedsc_flags = {}};
  if (!platform.empty()) sopts.seedsc_flags.push_back("--platform=" + platform);
  fri::Sandboxes sandboxes(sopts);
  absl::StatusOr<int> cleaned = sandboxes.CleanLeftovers();
  if (!cleaned.ok()) return Fail(std::string(cleaned.status().message()));
  if (*cleaned > 0) std::fprintf(stderr, "seedd: removed %d sandboxes left by an earlier run\n", *cleaned);

  // Older seedds attached their favordynmods hierarchy there; a killed one
  // left it mounted.
  const std::string old_favor = state_dir + "/cgroup-favordynmods";
  if (absl::StatusOr<int> n = RemoveLeftoverFavorMounts(old_favor); !n.ok()) {
    std::fprintf(stderr, "seedd: %s\n", std::string(n.status().message()).c_str());
  } else if (*n > 0) {
    std::fprintf(stderr, "seedd: unmounted %d cgroup mounts an earlier seedd left at %s\n", *n,
                 old_favor.c_str());
  }
  // The pool's parent and the favordynmods hierarchy are named after the
  // state dir: a restart finds the one, two seedds never share the other.
  const size_t state_hash = std::hash<std::string>()(state_dir);
  CgroupFavor favor({.name = absl::StrFormat("seedd_favordynmods_%016x", state_hash)});
  if (pool_size > 0) cgroup_warm = ChooseCgroupJoins(favordynmods, cgroup_warm, favor);
  std::unique_ptr<CgroupPool> pool = std::make_unique<CgroupPool>(CgroupPoolOptions{
      .parent = absl::StrFormat("seedd-%016x", state_hash),
      .size = pool_size,
      .memory_limit = instance_memory_bytes,
      .warm_linger = cgroup_warm});
  absl::StatusOr<int> old_cgroups = pool->RemoveLeftovers();
  if (!old_cgroups.ok()) return Fail(std::string(old_cgroups.status().message()));
  if (*old_cgroups > 0) {
    std::fprintf(stderr, "seedd: removed %d cgroups left by an earlier run\n", *old_cgroups);
  }
  if (pool_size == 0) {
    pool.reset();
  } else if (absl::Status s = pool->Fill(); !s.ok()) {
    return Fail(absl::StrCat("filling the cgroup pool: ", s.message(), " (--cgroup-pool=0 runs without)"));
  } else {
    std::fprintf(stderr, "seedd: %d instance cgroups ready under /sys/fs/cgroup/{memory,pids,cpu}/%s (memory limit %s)\n",
                 pool_size, pool->parent().c_str(), instance_memory_bytes > 0 ? instance_memory.c_str() : "none");
  }

  // --network=sandbox: instances' devices.
  std::unique_ptr<VethPool> veth;
  if (network == "sandbox") {
    // Host ends named after the state dir: another seedd's are never ours,
    // and a restart finds the ones a killed run left.
    const std::string prefix = HostEndPrefixFor(state_dir);
    veth = std::make_unique<VethPool>(VethPoolOptions{.size = veth_pool_size, .prefix = prefix});
    if (absl::Status s = veth->Fill(); !s.ok()) {
      return Fail(absl::StrCat("--network=sandbox: filling the veth pool: ", s.message()));
    }
    std::fprintf(stderr,
                 "seedd: %d instance network devices ready (host ends %s<N>, "
                 "10.203.<N>.1/24)\n",
                 veth_pool_size, prefix.c_str());
  }

  // Deployed functions outlive seedd: a restart serves them again (their
  // level-2 seeds are made again on demand).
  Functions functions(state_dir + "/functions");
  absl::StatusOr<int> saved = functions.Load();
  if (!saved.ok()) {
    return Fail(absl::StrCat("loading the deployed functions: ", saved.status().message()));
  }
  if (*saved > 0) std::fprintf(stderr, "seedd: serving %d functions deployed before\n", *saved);
  // The level-0 seed (this binary as its init, seedd/l0_init.h): with
  // --max-level=0 every call forks it and starts its runtime there; else it
  // serves a runtime whose level-1 seed cannot fork. The seeds boot at once,
  // each on its own thread.
  std::unique_ptr<RuntimeSeeds> l0;
  if (max_level == 0 || l0_fallback) {
    std::error_code exe_ec;
    std::string self = std::filesystem::read_symlink("/proc/self/exe", exe_ec).string();
    // The level-0 seed runs this binary over the host root, whose /tmp is
    // the sandbox's own tmpfs (fri/sandboxes.cc): from there it cannot.
    if (self.starts_with("/tmp/")) {
      std::string why = absl::StrCat("the level-0 seed runs ", self, " in a sandbox whose /tmp is its own (empty) "
                                     "tmpfs: run seedd from outside /tmp");
      if (max_level == 0) return Fail(absl::StrCat("--max-level=0: ", why));
      std::fprintf(stderr, "seedd: no level-0 seed, no fallback for a level-1 seed: %s\n", why.c_str());
    } else {
      l0 = std::make_unique<RuntimeSeeds>(sandboxes, L0Runtime(self, log_path), nullptr, ropts);
    }
  }
  RuntimeSeeds python(sandboxes, PythonRuntime(python_bin, log_path), pool.get(), ropts);
  if (veth != nullptr) python.UseNetwork(veth.get());
  std::unique_ptr<RuntimeSeeds> node;
  if (!Runs(node_bin)) {
    std::fprintf(stderr, "seedd: no node seed (%s does not run); node functions are refused\n",
                 node_bin.empty() ? "--node=\"\"" : node_bin.c_str());
  } else {
    node = std::make_unique<RuntimeSeeds>(sandboxes, NodeRuntime(node_bin, log_path), pool.get(), ropts);
    if (veth != nullptr) node->UseNetwork(veth.get());
  }
  const absl::Duration boot_start = sentry::MonotonicNow();
  absl::Status l0_booted = absl::OkStatus(), python_booted = absl::OkStatus(), node_booted = absl::OkStatus();
  {
    std::vector<std::thread> boots;
    if (l0 != nullptr) boots.emplace_back([&] { l0_booted = l0->BootL1(); });
    if (max_level > 0) {
      boots.emplace_back([&] { python_booted = python.BootL1(); });
      if (node != nullptr) boots.emplace_back([&] { node_booted = node->BootL1(); });
    }
    for (std::thread& t : boots) t.join();
  }
  if (!l0_booted.ok()) {
    if (max_level == 0) {
      sandboxes.DestroyAll();
      return Fail(absl::StrCat("booting the level-0 seed: ", l0_booted.message()));
    }
    std::fprintf(stderr, "seedd: booting the level-0 seed failed, no fallback for a level-1 seed: %s\n",
                 std::string(l0_booted.message()).c_str());
    l0->Stop();
    l0.reset();
  }
  std::map<std::string, RuntimeSeeds*> runtimes;
  // A runtime whose level-1 seed did not boot is served from level 0, if any.
  auto serve = [&](RuntimeSeeds& rt, const absl::Status& booted) {
    if (l0 != nullptr && max_level == 0) {
      rt.StartFromL0(l0.get());
    } else if (l0 != nullptr) {
      rt.FallBackToL0(l0.get());
      if (!booted.ok()) {
        std::fprintf(stderr, "seedd: booting the %s level-1 seed failed (%s): its calls start %s in a fork "
                     "of the level-0 seed\n", rt.runtime().c_str(), std::string(booted.message()).c_str(),
                     rt.runtime().c_str());
      }
    } else if (!booted.ok()) {
      return booted;
    }
    runtimes[rt.runtime()] = &rt;
    return absl::OkStatus();
  };
  if (absl::Status s = serve(python, python_booted); !s.ok()) {
    sandboxes.DestroyAll();
    return Fail(absl::StrCat("booting the python seed: ", s.message()));
  }
  if (node != nullptr) {
    if (absl::Status s = serve(*node, node_booted); !s.ok()) {  // python still serves
      std::fprintf(stderr, "seedd: booting the node seed failed, node functions are refused: %s\n",
                   std::string(s.message()).c_str());
    }
  }
  std::fprintf(stderr, "seedd: seeds booted in %.0f ms\n", absl::ToDoubleMilliseconds(sentry::MonotonicNow() - boot_start));
  std::vector<RuntimeSeeds*> all_runtimes;
  for (const auto& [name, rt] : runtimes) all_runtimes.push_back(rt);
  SeedBudget budget(sandboxes, all_runtimes, {.budget = seed_memory_bytes});
  budget.Start();
  gopts.more_metrics = [&pool, &veth, &budget, seed_memory_bytes] {
    auto gauge = [](const char* name, const char* help, double v) {
      return Sample{name, help, "gauge", {}, v};
    };
    auto counter = [](const char* name, const char* help, double v) {
      return Sample{name, help, "counter", {}, v};
    };
    SeedBudgetStats bs = budget.Stats();
    std::vector<Sample> out = {
        gauge("seedd_seed_memory_budget_bytes", "--seed-memory: the budget of the seeds' PSS (0 = none).",
              static_cast<double>(seed_memory_bytes)),
        gauge("seedd_seeds_pss_bytes", "PSS of every seed at the budget's last check (with --seed-memory).",
              static_cast<double>(bs.seeds_pss_bytes)),
        counter("seedd_seed_evictions_total", "Level-2 seeds destroyed to stay within --seed-memory.",
                static_cast<double>(bs.evictions))};
    if (pool != nullptr) {
      CgroupPoolStats st = pool->Stats();
      std::vector<Sample> more = {
          gauge("seedd_cgroup_pool_free", "Instance cgroups ready to take.", st.free),
          gauge("seedd_cgroup_pool_in_use", "Instance cgroups held by instances.", st.in_use),
          gauge("seedd_cgroup_pool_draining", "Given-back cgroups whose processes are not gone yet.",
                st.draining),
          counter("seedd_cgroup_pool_created_total", "Instance cgroups made.", st.created),
          counter("seedd_cgroup_pool_recycled_total", "Instance cgroups given back and reused.",
                  st.recycled),
          counter("seedd_cgroup_pool_misses_total", "Takes that found no ready cgroup.", st.misses),
          counter("seedd_cgroup_migration_warm_writes_total",
                  "No-op migrations of a seedd thread that keep instances' cgroup joins fast "
                  "(seedd/migration_warmth.h).",
                  static_cast<double>(st.warm_writes))};
      for (Sample& x : more) out.push_back(std::move(x));
    }
    if (veth != nullptr) {
      VethPoolStats st = veth->Stats();
      std::vector<Sample> more = {
          gauge("seedd_veth_pool_free", "Instance network devices ready to take.", st.free),
          gauge("seedd_veth_pool_in_use", "Instance network devices held by instances.", st.in_use),
          counter("seedd_veth_pool_created_total", "Instance network devices made.",
                  static_cast<double>(st.created)),
          counter("seedd_veth_pool_misses_total",
                  "Calls that found no ready device (loopback only).",
                  static_cast<double>(st.misses)),
          counter("seedd_veth_pool_failures_total",
                  "Instance network devices that could not be made (stderr says why).",
                  static_cast<double>(st.failures))};
      for (Sample& x : more) out.push_back(std::move(x));
    }
    return out;
  };
  Gateway gateway(functions, runtimes, sandboxes, gopts);
  HttpServer http([&](const HttpRequest& r) { return gateway.Handle(r); });
  // FRI first: once the HTTP port answers, <state-dir>/fri.address names a
  // listening socket (a client that waits for the port reads it then).
  ttrpc::Server fri_server;
  fri::RegisterFri(fri_server, sandboxes);
  // sun_path holds 108 bytes: a deep state dir serves FRI from /tmp instead.
  // <state-dir>/fri.address always names the socket.
  std::string fri_sock = state_dir + "/fri.sock";
  if (fri_sock.size() >= 100) {
    fri_sock = absl::StrFormat("/tmp/seedd-%016x.sock", std::hash<std::string>()(state_dir));
  }
  unlink(fri_sock.c_str());
  if (!(std::ofstream(state_dir + "/fri.address", std::ios::trunc) << fri_sock << "\n")) {
    sandboxes.DestroyAll();
    return Fail(absl::StrCat("writing ", state_dir, "/fri.address"));
  }
  if (absl::Status s = fri_server.Listen("unix://" + fri_sock); !s.ok()) {
    sandboxes.DestroyAll();
    return Fail(absl::StrCat("FRI socket ", fri_sock, ": ", s.message()));
  }
  if (absl::Status s = http.Listen(listen); !s.ok()) {
    sandboxes.DestroyAll();
    unlink((state_dir + "/fri.address").c_str());
    unlink(fri_sock.c_str());
    return Fail(std::string(s.message()));
  }
  std::thread fri_thread([&] { fri_server.Serve(); });
  std::thread http_thread([&] { http.Serve(); });
  std::fprintf(stderr, "seedd: listening on http://%s (FRI on %s)\n", listen.c_str(), fri_sock.c_str());

  int sig = 0;
  while (sigwait(&set, &sig) != 0) {
  }
  std::fprintf(stderr, "seedd: signal %d: destroying every sandbox\n", sig);
  http.Shutdown();
  http_thread.join();
  budget.Stop();
  python.Stop();
  if (node != nullptr) node->Stop();
  if (l0 != nullptr) l0->Stop();
  fri_server.Shutdown();
  fri_thread.join();
  sandboxes.DestroyAll();
  pool.reset();  // after the sandboxes: their cgroups must be empty to go
  veth.reset();
  unlink(fri_sock.c_str());
  unlink((state_dir + "/fri.address").c_str());
  std::filesystem::remove_all(state_dir + "/seedsc.bundles", ec);
  std::fprintf(stderr, "seedd: stopped\n");
  return 0;
}

}  // namespace
}  // namespace seedvisor::seedd

int main(int argc, char** argv) { return seedvisor::seedd::Main(argc, argv); }
