#include "shim/seed_fork.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "fri/fri.pb.h"
#include "fri/service_name.h"
#include "google/protobuf/message_lite.h"
#include "shim/log.h"
#include "shim/ttrpc/client.h"

namespace seedvisor::shim {
namespace {

namespace friv1 = ::seedvisor::fri::v1;

constexpr absl::Duration kFriTimeout = absl::Seconds(30);

absl::StatusOr<std::unique_ptr<ttrpc::Client>> DialSeedd(const SandboxConfig& cfg,
                                                         const std::string& seed) {
  absl::StatusOr<std::string> addr = SeeddFriAddress(cfg);
  if (!addr.ok()) {
    return absl::Status(addr.status().code(),
                        absl::StrCat("seed \"", seed, "\": ", addr.status().message()));
  }
  absl::StatusOr<std::unique_ptr<ttrpc::Client>> c = ttrpc::Client::Dial(*addr);
  if (!c.ok()) {
    return absl::UnavailableError(absl::StrCat("seed \"", seed, "\": seedd does not answer on ", *addr,
                                               " (", c.status().message(), "): is seedd running?"));
  }
  return c;
}

// One FRI call on a connection of its own (Activate, Destroy: once per container).
absl::Status CallSeedd(const SandboxConfig& cfg, const char* method,
                       const google::protobuf::MessageLite& req, google::protobuf::MessageLite* resp) {
  absl::StatusOr<std::string> addr = SeeddFriAddress(cfg);
  if (!addr.ok()) return addr.status();
  absl::StatusOr<std::unique_ptr<ttrpc::Client>> c = ttrpc::Client::Dial(*addr);
  if (!c.ok()) return c.status();
  return (*c)->Call(fri::kService, method, req, resp, kFriTimeout);
}

// The FRI id of the seed the annotation names (see ForkFromSeed).
absl::StatusOr<std::string> ResolveSeed(ttrpc::Client& fri, const std::string& seed) {
  friv1::ListResponse list;
  if (absl::Status s = fri.Call(fri::kService, "List", friv1::ListRequest(), &list, kFriTimeout);
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("seed \"", seed, "\": seedd's List: ", s.message()));
  }
  std::vector<std::string> seeds;
  for (const friv1::SandboxInfo& sb : list.sandboxes()) {
    // Not a running sandbox, nor another container (a created one is paused).
    if (sb.status() != "paused" || sb.labels().contains("owner")) continue;
    auto label = [&sb](const char* k) {
      auto it = sb.labels().find(k);
      return it == sb.labels().end() ? std::string() : it->second;
    };
    if (sb.id() == seed || (label("runtime") == seed && label("level") == "1")) return sb.id();
    seeds.push_back(sb.id());
  }
  return absl::NotFoundError(absl::StrCat("seed \"", seed, "\": seedd has no such seed (its seeds: ",
                                          seeds.empty() ? "none" : absl::StrJoin(seeds, ", "), ")"));
}

// A fifo the seed opens for writing would block it (and every other fork of
// it) until a reader comes: hold the fifo open for reading and writing
// ourselves, so the seed's open returns at once, and hand it our fd's path.
struct HeldStdio {
  std::vector<int> fds;
  ~HeldStdio() {
    for (int fd : fds) close(fd);
  }
  std::string Hold(const std::string& path) {
    struct stat st;
    if (path.empty() || stat(path.c_str(), &st) != 0 || !S_ISFIFO(st.st_mode)) return path;
    int fd = open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return path;
    fds.push_back(fd);
    return absl::StrCat("/proc/", getpid(), "/fd/", fd);
  }
};

}  // namespace

std::string SeedOf(const oci::Spec& spec) {
  auto it = spec.annotations.find(kSeedAnnotation);
  return it == spec.annotations.end() ? "" : it->second;
}

absl::StatusOr<std::string> SeeddFriAddress(const SandboxConfig& cfg) {
  if (!cfg.seedd_fri_address.empty()) return cfg.seedd_fri_address;
  std::string file = cfg.seedd_state_dir + "/fri.address";
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string addr(absl::StripAsciiWhitespace(ss.str()));
  if (!in || addr.empty()) {
    return absl::UnavailableError(absl::StrCat(
        "seedd is not running: no FRI address in ", file,
        " (start seedd with --state-dir=", cfg.seedd_state_dir,
        ", or set SEEDD_STATE_DIR / SEEDD_FRI_ADDRESS in containerd's environment)"));
  }
  return addr;
}

absl::StatusOr<std::unique_ptr<Sandbox>> ForkFromSeed(const SandboxConfig& cfg,
                                                      const std::string& seed,
                                                      const std::string& id,
                                                      const control::v1::Stdio& stdio,
                                                      const std::string& cgroup) {
  absl::StatusOr<std::unique_ptr<ttrpc::Client>> fri = DialSeedd(cfg, seed);
  if (!fri.ok()) return fri.status();
  absl::StatusOr<std::string> seed_id = ResolveSeed(**fri, seed);
  if (!seed_id.ok()) return seed_id.status();

  HeldStdio held;
  friv1::ForkRequest req;
  req.set_seed_id(*seed_id);
  req.set_new_id(id);
  req.set_paused(true);  // Task.Start resumes it
  req.set_cgroup(cgroup);
  friv1::Stdio* io = req.mutable_stdio();
  io->set_stdin(stdio.stdin());
  io->set_stdout(held.Hold(stdio.stdout()));
  io->set_stderr(held.Hold(stdio.stderr()));
  io->set_terminal(stdio.terminal());
  io->set_console_socket(stdio.console_socket());
  (*req.mutable_labels())["owner"] = "containerd";
  (*req.mutable_labels())["containerd.namespace"] = cfg.ns;
  friv1::ForkResponse resp;
  if (absl::Status s = (*fri)->Call(fri::kService, "Fork", req, &resp, kFriTimeout); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat("seed \"", seed, "\" (", *seed_id, "): fork for container ",
                                               id, ": ", s.message()));
  }
  SandboxConfig release_cfg = cfg;
  return Sandbox::Adopt(id, resp.pid(), resp.control_address(), [release_cfg, id] {
    absl::Status s = DestroyForked(release_cfg, id);
    if (!s.ok() && !absl::IsNotFound(s)) {
      ShimLog("destroying forked sandbox %s: %s", id, s.ToString());
    }
  });
}

absl::Status ActivateForked(const SandboxConfig& cfg, const std::string& id) {
  friv1::ActivateRequest req;
  req.set_id(id);
  friv1::ActivateResponse resp;
  return CallSeedd(cfg, "Activate", req, &resp);
}

absl::Status DestroyForked(const SandboxConfig& cfg, const std::string& id) {
  friv1::DestroyRequest req;
  req.set_id(id);
  friv1::DestroyResponse resp;
  return CallSeedd(cfg, "Destroy", req, &resp);
}

}  // namespace seedvisor::shim
