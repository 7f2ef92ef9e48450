#include "fri/sandboxes.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "fri/host_memory.h"
#include "fri/status_macros.h"
#include "nlohmann/json.hpp"
#include "runsc/container/leftover.h"
#include "runsc/container/sandbox.h"
#include "sentry/base/mono_clock.h"
#include "sentry/control/control.pb.h"
#include "sentry/control/server.h"

namespace seedvisor::fri {
namespace {

constexpr char kParentAnnotation[] = "dev.seedvisor.parent";
constexpr absl::Duration kForkTimeout = absl::Seconds(30);

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The sandbox's control socket lies outside its state dir when the dir's
// path is too long for sun_path; remove it there too.
void RemoveState(const std::string& root, const container::State& st) {
  std::string dir = container::StateDir(root, st.id);
  if (!st.control_address.empty() && st.control_address.rfind(dir, 0) != 0) {
    unlink(st.control_address.c_str());
  }
  container::RemoveStateDir(root, st.id).IgnoreError();
}

int OpenStdio(const std::string& path, int flags) {
  return open(path.empty() ? "/dev/null" : path.c_str(), flags | O_CLOEXEC);
}

}  // namespace

Sandboxes::Sandboxes(SandboxesOptions o) : opts_(std::move(o)) {
  std::error_code ec;
  std::filesystem::create_directories(opts_.root, ec);
}

Sandboxes::~Sandboxes() = default;

absl::StatusOr<int> Sandboxes::CleanLeftovers() {
  int n = 0;
  for (const std::string& id : container::ListIds(opts_.root)) {
    absl::StatusOr<container::State> st = container::LoadState(opts_.root, id);
    if (!st.ok()) continue;
    // Only the process the state recorded (its pid may have been reused);
    // a state without its start time names none.
    if (container::SandboxAlive(*st)) container::KillSandbox(st->sandbox());
    RemoveState(opts_.root, *st);
    ++n;
  }
  // Dirs without a state: a Create or Fork the old run never finished
  // recording (issue 9); with the sandbox that may serve its socket.
  std::vector<std::string> dirs;
  std::error_code walk;
  for (auto it = std::filesystem::directory_iterator(opts_.root, walk);
       !walk && it != std::filesystem::directory_iterator(); it.increment(walk)) {
    if (it->is_directory()) dirs.push_back(it->path().filename());
  }
  for (const std::string& id : dirs) {
    if (container::RemoveLeftover(opts_.root, id, /*end_sandbox=*/true).ok()) ++n;
  }
  std::error_code ec;
  std::filesystem::remove_all(opts_.root + ".bundles", ec);
  return n;
}

absl::Status Sandboxes::CheckNewId(const std::string& id) {
  if (absl::Status s = container::ValidateId(id); !s.ok()) return s;
  if (id.size() > 128) return absl::InvalidArgumentError("id: longer than 128 characters");
  if (entries_.contains(id)) {
    return absl::AlreadyExistsError(absl::StrCat("sandbox \"", id, "\" already exists"));
  }
  return absl::OkStatus();
}

absl::Status Sandboxes::RunSeedsc(const std::vector<std::string>& args, const v1::Stdio& stdio,
                                  const std::string& cwd) {
  int fds[3] = {OpenStdio(stdio.stdin(), O_RDONLY), OpenStdio(stdio.stdout(), O_WRONLY),
                OpenStdio(stdio.stderr(), O_WRONLY)};
  const char* names[3] = {"stdin", "stdout", "stderr"};
  const std::string* paths[3] = {&stdio.stdin(), &stdio.stdout(), &stdio.stderr()};
  for (int i = 0; i < 3; i++) {
    if (fds[i] < 0) {
      int err = errno;
      for (int fd : fds) {
        if (fd >= 0) close(fd);
      }
      return absl::InvalidArgumentError(
          absl::StrCat("stdio.", names[i], ": opening \"", *paths[i], "\": ", strerror(err)));
    }
  }
  std::vector<std::string> argv{opts_.seedsc};
  argv.insert(argv.end(), opts_.seedsc_flags.begin(), opts_.seedsc_flags.end());
  argv.push_back("--root=" + opts_.root);
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (std::string& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {  // between fork and exec: no allocation
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    for (int i = 0; i < 3; i++) dup2(fds[i], i);  // dup2 clears FD_CLOEXEC
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  for (int fd : fds) close(fd);
  if (pid < 0) return absl::InternalError(absl::StrCat("fork for seedsc: ", strerror(errno)));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(
      "seedsc ", args[0], " failed (", WIFEXITED(status) ? "exit status " : "signal ",
      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), "; its stderr went to \"",
      stdio.stderr().empty() ? "/dev/null" : stdio.stderr(), "\")"));
}

absl::StatusOr<std::string> Sandboxes::WriteHostRootBundle(const std::string& id,
                                                           const v1::HostRoot& hr) {
  if (hr.args().empty() || hr.args(0).empty() || hr.args(0)[0] != '/') {
    return absl::InvalidArgumentError("host_root.args: must start with an absolute path");
  }
  if (!hr.cwd().empty() && hr.cwd()[0] != '/') {
    return absl::InvalidArgumentError("host_root.cwd: must be absolute");
  }
  std::string dir = absl::StrCat(opts_.root, ".bundles/", id);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("creating bundle ", dir, ": ", ec.message()));
  RETURN_IF_ERROR(RunSeedsc({"spec"}, v1::Stdio(), dir));
  nlohmann::json c = nlohmann::json::parse(ReadFile(dir + "/config.json"), nullptr, false);
  if (c.is_discarded() || !c.is_object()) {
    return absl::InternalError(absl::StrCat(dir, "/config.json: `seedsc spec` wrote no JSON object"));
  }
  c["process"]["terminal"] = false;
  c["process"]["args"] = std::vector<std::string>(hr.args().begin(), hr.args().end());
  c["process"]["env"] = hr.env().empty() ? std::vector<std::string>{"PATH=/usr/bin:/bin"}
                                         : std::vector<std::string>(hr.env().begin(), hr.env().end());
  c["process"]["cwd"] = hr.cwd().empty() ? "/tmp" : hr.cwd();
  c["root"] = {{"path", "/"}, {"readonly", true}};
  c["mounts"].push_back({{"destination", "/tmp"},
                         {"type", "tmpfs"},
                         {"source", "tmpfs"},
                         {"options", {"nosuid", "nodev", "mode=1777"}}});
  std::ofstream out(dir + "/config.json", std::ios::trunc);
  out << c.dump(1);
  if (!out) return absl::InternalError(absl::StrCat("writing ", dir, "/config.json"));
  return dir;
}

absl::StatusOr<v1::CreateResponse> Sandboxes::Create(const v1::CreateRequest& req) {
  {
    absl::MutexLock l(&mu_);
    RETURN_IF_ERROR(CheckNewId(req.id()));
  }
  std::string bundle;
  if (req.has_host_root()) {
    ASSIGN_OR_RETURN(bundle, WriteHostRootBundle(req.id(), req.host_root()));
  } else if (!req.bundle().empty() && req.bundle()[0] == '/') {
    bundle = req.bundle();
  } else {
    return absl::InvalidArgumentError("root: give bundle (an absolute path) or host_root");
  }
  RETURN_IF_ERROR(RunSeedsc({"create", "--bundle=" + bundle, req.id()}, req.stdio(), ""));
  absl::StatusOr<container::State> st = container::LoadState(opts_.root, req.id());
  if (!st.ok()) return st.status();
  if (absl::Status s = RunSeedsc({"start", req.id()}, v1::Stdio(), ""); !s.ok()) {
    container::DestroySandbox(opts_.root, *st).IgnoreError();
    return s;
  }
  auto e = std::make_shared<Entry>();
  e->state = *st;
  e->level0 = true;
  e->created_ns = absl::GetCurrentTimeNanos();
  e->labels.insert(req.labels().begin(), req.labels().end());
  absl::MutexLock l(&mu_);
  entries_[req.id()] = e;
  order_.push_back(req.id());
  v1::CreateResponse resp;
  resp.set_pid(st->sandbox_pid);
  return resp;
}

absl::StatusOr<std::shared_ptr<ttrpc::Client>> Sandboxes::ClientFor(const std::string& id) {
  std::string address;
  {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return absl::NotFoundError(absl::StrCat("no sandbox \"", id, "\""));
    if (it->second->client && it->second->client->alive()) return it->second->client;
    address = it->second->state.control_address;
  }
  absl::StatusOr<std::unique_ptr<ttrpc::Client>> c = ttrpc::Client::Dial(address);
  if (!c.ok()) {
    return absl::UnavailableError(
        absl::StrCat("sandbox \"", id, "\": cannot reach its control socket: ", c.status().message()));
  }
  std::shared_ptr<ttrpc::Client> client = std::move(*c);
  absl::MutexLock l(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return absl::NotFoundError(absl::StrCat("no sandbox \"", id, "\""));
  if (it->second->client && it->second->client->alive()) return it->second->client;
  it->second->client = client;
  return client;
}

absl::StatusOr<v1::ForkResponse> Sandboxes::Fork(const v1::ForkRequest& req, int packet_fd) {
  const absl::Duration t0 = sentry::MonotonicNow();
  if (req.has_net_device() && packet_fd < 0) {
    return absl::InvalidArgumentError(
        "net_device: its packet socket did not come with the request (SCM_RIGHTS)");
  }
  container::State st;
  {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(req.seed_id());
    if (it == entries_.end()) {
      return absl::NotFoundError(absl::StrCat("seed_id: no sandbox \"", req.seed_id(), "\""));
    }
    if (!it->second->paused) {
      return absl::FailedPreconditionError(
          absl::StrCat("seed_id: sandbox \"", req.seed_id(), "\" is not paused (Pause makes it a seed)"));
    }
    RETURN_IF_ERROR(CheckNewId(req.new_id()));
    st = it->second->state;
  }
  std::string seed_id = st.id;
  // Held until the state is saved: a dir without a state whose lock nobody
  // holds is a leftover that `seedsc delete` removes, sandbox and all.
  absl::StatusOr<container::Lock> lock = container::Lock::CreateDir(opts_.root, req.new_id());
  if (!lock.ok()) return lock.status();
  std::string dir = container::StateDir(opts_.root, req.new_id());
  // seedsc exec/delete read config.json: share the seed's (a link, no copy).
  link((container::StateDir(opts_.root, seed_id) + "/config.json").c_str(),
       (dir + "/config.json").c_str());
  st.id = req.new_id();
  st.created = container::NowRfc3339();
  st.control_address = container::ControlAddressFor(dir);
  st.cgroups_path = "";  // the seed's cgroup is the seed's
  st.annotations[kParentAnnotation] = seed_id;
  if (!req.cgroup().empty()) st.annotations["dev.seedvisor.cgroup"] = req.cgroup();

  control::v1::ForkRequest creq;
  creq.set_container_id(seed_id);
  creq.set_new_id(req.new_id());
  creq.set_control_address(st.control_address);
  creq.set_paused(req.paused());
  creq.set_cgroup(req.cgroup());
  creq.mutable_stdio()->set_stdin(req.stdio().stdin().empty() ? "/dev/null" : req.stdio().stdin());
  creq.mutable_stdio()->set_stdout(req.stdio().stdout().empty() ? "/dev/null" : req.stdio().stdout());
  creq.mutable_stdio()->set_stderr(req.stdio().stderr().empty() ? "/dev/null" : req.stdio().stderr());
  creq.mutable_stdio()->set_terminal(req.stdio().terminal());
  creq.mutable_stdio()->set_console_socket(req.stdio().console_socket());
  std::vector<int> fds;  // with the request's frame, on our own connection to the seed
  if (req.has_net_device()) {
    *creq.mutable_net_device() = req.net_device();
    fds.push_back(packet_fd);
  }
  // Test only (test/seedd): Forks of every seed whose id contains one of
  // these comma-separated strings (or is "=ID") stall their child, which the
  // seed kills after 1 s: a failing seed copy.
  if (const char* stall = std::getenv("SEEDD_TEST_FORK_STALL"); stall != nullptr) {
    for (absl::string_view part : absl::StrSplit(stall, ',', absl::SkipEmpty())) {
      if (absl::ConsumePrefix(&part, "=") ? seed_id == part : absl::StrContains(seed_id, part)) {
        creq.set_test_stall_child(true);
        creq.set_report_deadline_ms(1000);
      }
    }
  }
  control::v1::ForkResponse cresp;
  absl::StatusOr<std::shared_ptr<ttrpc::Client>> client = ClientFor(seed_id);
  const absl::Duration called = sentry::MonotonicNow();
  absl::Status s = client.ok() ? (*client)->Call(control::kService, "Fork", creq, &cresp, kForkTimeout,
                                                              {}, fds)
                               : client.status();
  if (!s.ok()) {
    RemoveState(opts_.root, st);
    // Name the seed and the wait: the caller sees many seeds' forks.
    return absl::Status(s.code(), absl::StrCat("Fork of seed sandbox \"", seed_id, "\" into \"",
                                               req.new_id(), "\" failed after ",
                                               absl::FormatDuration(absl::Trunc(sentry::MonotonicNow() - called, absl::Milliseconds(1))),
                                               " (timeout ", absl::FormatDuration(kForkTimeout), "): ",
                                               s.message()));
  }
  // Who the fork's process is, for every later signal to it (it has just
  // reported, so it is there; a pid alone may name another process later).
  absl::StatusOr<container::ProcessIdentity> child = container::IdentityOf(cresp.pid());
  if (!child.ok()) {
    RemoveState(opts_.root, st);
    return absl::InternalError(absl::StrCat("Fork of seed sandbox \"", seed_id, "\" into \"",
                                            req.new_id(), "\": its process (host pid ",
                                            cresp.pid(), ") exited as soon as it was made"));
  }
  st.set_sandbox(*child);
  if (s = container::SaveState(opts_.root, st); !s.ok()) {
    container::SignalProcess(st.sandbox(), SIGKILL).IgnoreError();
    RemoveState(opts_.root, st);
    return s;
  }
  auto e = std::make_shared<Entry>();
  e->state = st;
  e->parent = seed_id;
  e->paused = req.paused();
  e->created_ns = absl::GetCurrentTimeNanos();
  e->labels.insert(req.labels().begin(), req.labels().end());
  {
    absl::MutexLock l(&mu_);
    entries_[req.new_id()] = e;
    order_.push_back(req.new_id());
    if (auto it = entries_.find(seed_id); it != entries_.end()) it->second->forks_served++;
  }
  v1::ForkResponse resp;
  resp.set_pid(cresp.pid());
  resp.set_control_address(st.control_address);
  for (const auto& ph : cresp.phases()) {
    v1::PhaseTime* p = resp.add_phases();
    p->set_name(ph.name());
    p->set_ns(ph.ns());
  }
  v1::PhaseTime* rpc = resp.add_phases();
  rpc->set_name("rpc");
  rpc->set_ns(absl::ToInt64Nanoseconds(sentry::MonotonicNow() - t0));
  return resp;
}

absl::Status Sandboxes::Activate(const std::string& id) {
  {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return absl::NotFoundError(absl::StrCat("id: no sandbox \"", id, "\""));
    if (!it->second->paused) {
      return absl::FailedPreconditionError(absl::StrCat("id: sandbox \"", id, "\" is not paused"));
    }
  }
  ASSIGN_OR_RETURN(std::shared_ptr<ttrpc::Client> client, ClientFor(id));
  control::v1::ResumeRequest req;
  req.set_container_id(id);
  control::v1::ResumeResponse resp;
  RETURN_IF_ERROR(client->Call(control::kService, "Resume", req, &resp, absl::Seconds(10)));
  absl::MutexLock l(&mu_);
  if (auto it = entries_.find(id); it != entries_.end()) it->second->paused = false;
  return absl::OkStatus();
}

absl::Status Sandboxes::Pause(const std::string& id) {
  ASSIGN_OR_RETURN(std::shared_ptr<ttrpc::Client> client, ClientFor(id));
  control::v1::PauseRequest req;
  req.set_container_id(id);
  control::v1::PauseResponse resp;
  RETURN_IF_ERROR(client->Call(control::kService, "Pause", req, &resp, absl::Seconds(10)));
  absl::MutexLock l(&mu_);
  if (auto it = entries_.find(id); it != entries_.end()) it->second->paused = true;
  return absl::OkStatus();
}

void Sandboxes::Remove(const Entry& e) {
  if (e.client) e.client->Close();
  if (e.level0) {
    // Shutdown, SIGKILL, cgroups, state dir: as `seedsc delete --force`.
    container::DestroySandbox(opts_.root, e.state).IgnoreError();
    return;
  }
  // Early destroy: the anchor of a forked sandbox kills its helpers once
  // the sentry is gone; nothing here waits for the guest.
  container::SignalProcess(e.state.sandbox(), SIGKILL).IgnoreError();
  RemoveState(opts_.root, e.state);
}

absl::Status Sandboxes::Destroy(const std::string& id) {
  std::shared_ptr<Entry> e;
  {
    absl::MutexLock l(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end()) return absl::NotFoundError(absl::StrCat("id: no sandbox \"", id, "\""));
    e = it->second;
    entries_.erase(it);
    order_.erase(std::find(order_.begin(), order_.end(), id));
  }
  Remove(*e);
  return absl::OkStatus();
}

void Sandboxes::DestroyAll() {
  std::vector<std::string> ids;
  {
    absl::MutexLock l(&mu_);
    ids.assign(order_.rbegin(), order_.rend());
  }
  for (const std::string& id : ids) Destroy(id).IgnoreError();
}

absl::StatusOr<v1::StatsResponse> Sandboxes::Stats(const std::string& id) {
  std::vector<std::pair<std::string, std::shared_ptr<Entry>>> all;
  {
    absl::MutexLock l(&mu_);
    if (!id.empty() && !entries_.contains(id)) {
      return absl::NotFoundError(absl::StrCat("id: no sandbox \"", id, "\""));
    }
    for (const std::string& i : order_) all.emplace_back(i, entries_[i]);
  }
  std::vector<ProcEntry> table = ReadProcTable();
  v1::StatsResponse resp;
  for (const auto& [eid, e] : all) {
    if (!id.empty() && eid != id) continue;
    std::set<pid_t> others;
    uint32_t children = 0;
    for (const auto& [oid, o] : all) {
      if (oid != eid) others.insert(o->state.sandbox_pid);
      if (o->parent == eid) children++;
    }
    Memory m = SumMemory(SandboxProcesses(e->state.sandbox_pid, others, table));
    v1::SandboxStats* s = resp.add_sandboxes();
    s->set_id(eid);
    s->set_uss_bytes(m.uss_bytes);
    s->set_pss_bytes(m.pss_bytes);
    s->set_host_processes(m.processes);
    s->set_children(children);
    absl::MutexLock l(&mu_);
    s->set_forks_served(e->forks_served);
  }
  return resp;
}

v1::ListResponse Sandboxes::List() {
  v1::ListResponse resp;
  absl::MutexLock l(&mu_);
  for (const std::string& id : order_) {
    const Entry& e = *entries_[id];
    v1::SandboxInfo* info = resp.add_sandboxes();
    info->set_id(id);
    info->set_parent(e.parent);
    info->set_status(!container::SandboxAlive(e.state) ? "stopped"
                     : e.paused                                    ? "paused"
                                                                   : "running");
    info->set_pid(e.state.sandbox_pid);
    info->set_created_unix_nanos(e.created_ns);
    info->mutable_labels()->insert(e.labels.begin(), e.labels.end());
  }
  return resp;
}

}  // namespace seedvisor::fri
