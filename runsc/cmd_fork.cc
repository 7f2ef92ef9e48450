// `seedsc fork [--paused] [--cgroup PATH] [--member-cgroup ID=PATH ...]
// [--console-socket S] SEED_ID NEW_ID`: a new container
// forked from a paused one (a seed), copy-on-write, in about a millisecond
// of sandbox work. A thin client of the seed's Fork RPC (sentry/sfork).
//
// The child is a container like any other (state under --root, its own
// control socket; kill, exec, ps, wait, pause, resume, delete work), whose
// state names its parent in the dev.seedvisor.parent annotation. Its stdio
// is this command's own, or with --console-socket a new pty whose master goes
// to that socket (as for create). --paused leaves it paused: a new seed.
// A pod seed (containers created into its sandbox) is forked whole; each of
// its containers with a host cgroup of its own needs one for the fork
// (--member-cgroup, repeated: the container's id in the seed, which its
// copy in the fork keeps, and an existing cgroup path). Only the new
// container's state is written: the fork's copies of the pod's other
// containers are reached through its control socket.
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "runsc/cmd_common.h"
#include "runsc/container/sandbox.h"
#include "sentry/control/control.pb.h"
#include "sentry/control/net_device.h"
#include "sentry/socket/net_takeover.h"

namespace seedvisor::runsc {
namespace {

constexpr const char kParentAnnotation[] = "dev.seedvisor.parent";

// The interface of the network namespace at `path`, taken over as boot
// takes a seed's (sentry/socket/net_takeover.h): exactly one Ethernet
// interface with an address. A thread of its own setns()es into the
// namespace for it and ends.
absl::StatusOr<sentry::TakenInterface> TakeOverNetns(const std::string& path) {
  absl::StatusOr<std::vector<sentry::TakenInterface>> taken =
      absl::InternalError("the takeover thread did not run");
  std::thread([&] {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      taken = absl::InvalidArgumentError(strerror(errno));
      if (fd >= 0) close(fd);
      return;
    }
    close(fd);
    taken = sentry::TakeOverInterfaces();
  }).join();
  auto fail = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("--netns ", path, ": ", why, " (a network namespace with one interface, "
                     "e.g. /run/netns/NAME)"));
  };
  if (!taken.ok()) return fail(taken.status().message());
  if (taken->size() != 1) {
    for (sentry::TakenInterface& t : *taken) close(t.packet_fd);
    return fail(absl::StrCat(taken->size(), " interfaces with an address there, not 1"));
  }
  return (*taken)[0];
}

}  // namespace

int CmdFork(const GlobalConfig& cfg, const std::vector<std::string>& in_args) {
  std::vector<std::string> args = in_args;
  // ID=PATH each, in command-line order.
  const std::vector<std::string> members = TakeRepeated(&args, "member-cgroup", {"paused"});
  std::map<std::string, std::string> member_cgroups;
  for (const std::string& m : members) {
    const size_t eq = m.find('=');
    if (eq == 0 || eq == std::string::npos || eq + 1 == m.size()) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "--member-cgroup \"", m, "\": not CONTAINER_ID=CGROUP_PATH")));
    }
    if (!member_cgroups.emplace(m.substr(0, eq), m.substr(eq + 1)).second) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
          "--member-cgroup: container \"", m.substr(0, eq), "\" named twice")));
    }
  }
  FlagSet fs("fork");
  bool paused = false;
  std::string cgroup, pid_file, console_socket;
  fs.Bool("paused", &paused, "leave the new container paused (a new seed)");
  fs.String("cgroup", &cgroup, "an existing cgroup (path under each controller) for the new container");
  fs.String("pid-file", &pid_file, "file to write the new sandbox process's pid to");
  std::string netns;
  fs.String("netns", &netns,
            "a network namespace (path) whose one interface becomes the new container's own "
            "device, for a seed that runs --network=sandbox; without it the fork keeps only "
            "loopback");
  fs.String("console-socket", &console_socket,
            "unix socket to send the new container's pty master to (its stdio becomes that pty)");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 2, 2, "fork [flags] <seed id> <new id>", &pos)) return kExitUsage;
  const std::string& new_id = pos[1];
  auto seed = LoadContainer(cfg, pos[0]);
  if (!seed.ok()) return Fail(seed.status());
  if (absl::Status s = container::ValidateId(new_id); !s.ok()) return Fail(s);
  std::string status = container::LiveStatus(*seed);
  if (status != "paused") {
    return Fail(absl::StrCat("container \"", seed->id, "\" is ", status,
                             ", not paused: only a paused container (a seed) can be forked "
                             "(seedsc pause ", seed->id, ")"));
  }
  if (container::LoadState(cfg.root, new_id).ok()) {
    return Fail(absl::StrCat("container \"", new_id, "\" already exists"));
  }
  auto lock = container::Lock::CreateDir(cfg.root, new_id);
  if (!lock.ok()) return Fail(lock.status());

  container::State st = *seed;
  st.id = new_id;
  st.sandbox_id = new_id;  // a sandbox of its own (the seed's state said the seed's)
  st.created = container::NowRfc3339();
  st.control_address = container::ControlAddressFor(container::StateDir(cfg.root, new_id));
  st.cgroups_path = "";  // the seed's cgroup is the seed's: delete must not remove it
  st.annotations[kParentAnnotation] = seed->id;
  st.set_sandbox({});  // the seed's process is the seed's
  auto undo = [&](const absl::Status& why) {
    container::KillSandbox(st.sandbox());
    if (st.control_address.rfind(container::StateDir(cfg.root, new_id), 0) != 0) {
      unlink(st.control_address.c_str());
    }
    container::RemoveStateDir(cfg.root, new_id).IgnoreError();
    return Fail(why);
  };

  // The seed's config.json (exec, update and delete's hooks read it).
  std::error_code ec;
  std::filesystem::copy_file(container::StateDir(cfg.root, seed->id) + "/config.json",
                             container::StateDir(cfg.root, new_id) + "/config.json", ec);
  if (ec) return undo(absl::InternalError(absl::StrCat("copying the seed's config.json: ", ec.message())));

  control::v1::ForkRequest req;
  req.set_container_id(seed->id);
  req.set_new_id(new_id);
  req.set_control_address(st.control_address);
  req.set_paused(paused);
  req.set_cgroup(cgroup);
  for (const auto& [id, path] : member_cgroups) (*req.mutable_member_cgroups())[id] = path;
  if (console_socket.empty()) {
    req.mutable_stdio()->set_stdin(OwnFdPath(0));
    req.mutable_stdio()->set_stdout(OwnFdPath(1));
    req.mutable_stdio()->set_stderr(OwnFdPath(2));
  } else {
    req.mutable_stdio()->set_terminal(true);
    req.mutable_stdio()->set_console_socket(AbsPath(console_socket));
  }
  // Test only (test/sfork): the child stalls before it reports, and the
  // seed gives it this many milliseconds before it kills it.
  if (const char* stall = std::getenv("SEEDSC_TEST_FORK_STALL"); stall != nullptr) {
    req.set_test_stall_child(true);
    req.set_report_deadline_ms(static_cast<uint32_t>(std::strtoul(stall, nullptr, 10)));
  }
  control::v1::ForkResponse resp;
  absl::Status called;
  {
    // The device's packet socket goes with the Fork request itself, on our
    // own connection to the seed.
    std::vector<int> fds;
    if (!netns.empty()) {
      absl::StatusOr<sentry::TakenInterface> t = TakeOverNetns(AbsPath(netns));
      if (!t.ok()) return undo(t.status());
      fds.push_back(t->packet_fd);
      *req.mutable_net_device() = control::NetDeviceToProto(t->info);
    }
    called = container::Call(*seed, "Fork", req, &resp, absl::ZeroDuration(), fds);
    for (int fd : fds) close(fd);  // the fork has its own copy
  }
  if (!called.ok()) return undo(called);
  // Who the new sandbox's process is, for every later signal to it: it has
  // just reported, so it is there (unless it died at once, as nothing to kill).
  absl::StatusOr<container::ProcessIdentity> child = container::IdentityOf(resp.pid());
  if (!child.ok()) {
    return undo(absl::InternalError(absl::StrCat(
        "the forked sandbox (host pid ", resp.pid(), ") exited as soon as it was made")));
  }
  st.set_sandbox(*child);
  // Not cgroups_path: the caller's cgroup (a pool's) outlives the container.
  if (!cgroup.empty()) st.annotations["dev.seedvisor.cgroup"] = cgroup;
  if (absl::Status s = container::SaveState(cfg.root, st); !s.ok()) return undo(s);
  if (!WritePidFile(pid_file.empty() ? "" : AbsPath(pid_file), st.sandbox_pid)) {
    return undo(absl::InternalError(absl::StrCat("writing --pid-file ", pid_file)));
  }
  return 0;
}

}  // namespace seedvisor::runsc
