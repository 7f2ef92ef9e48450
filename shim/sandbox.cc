#include "shim/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "runsc/container/host_process.h"
#include "sentry/base/mono_clock.h"
#include "shim/log.h"
#include "shim/reaper.h"

namespace seedvisor::shim {
namespace {

constexpr char kControlService[] = "seedvisor.control.v1.Control";

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Runs argv with stdin/stdout on /dev/null and stderr into `errfile`; returns
// the raw wait status, or -1 if it did not finish within `timeout`.
absl::StatusOr<int> RunTool(const std::vector<std::string>& argv, const std::string& errfile,
                            absl::Duration timeout) {
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  int err = errfile.empty() ? 2 : open(errfile.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int fds[3] = {devnull, devnull, err >= 0 ? err : devnull};
  absl::StatusOr<pid_t> pid = Reaper::Get().Spawn(argv, fds);
  close(devnull);
  if (err > 2) close(err);
  if (!pid.ok()) return pid.status();
  int st = Reaper::Get().Wait(*pid, timeout);
  if (st == -1) {
    kill(*pid, SIGKILL);
    Reaper::Get().Wait(*pid, absl::Seconds(2));
    return absl::DeadlineExceededError(absl::StrCat(argv[0], " did not finish in time"));
  }
  return st;
}

std::string SelfDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}

std::string FindOnPath(const std::string& name) {
  const char* path = getenv("PATH");
  if (path == nullptr) return name;
  for (absl::string_view dir : absl::StrSplit(path, ':')) {
    std::string cand = absl::StrCat(std::string(dir), "/", name);
    if (access(cand.c_str(), X_OK) == 0) return cand;
  }
  return name;
}

// What `seedsc create` recorded in the container's state.json
// (runsc/container/state.h) that the shim needs.
struct Recorded {
  // <root>/<id>/control.sock, unless that path is too long for a unix
  // socket (a 64-hex CRI id under a long root), then one in /tmp.
  std::string control_address;
  // The sandbox it lives in: its own id, or its pod's sandbox container's.
  std::string sandbox_id;
  // The sandbox's process (pid 0 if the state does not say).
  container::ProcessIdentity sandbox;
  // linux.cgroupsPath as seedsc made it ("" if it made none).
  std::string cgroups_path;
};

Recorded ReadRecorded(const std::string& root, const std::string& id) {
  const std::string dir = absl::StrCat(root, "/", id);
  const nlohmann::json st =
      nlohmann::json::parse(ReadFileOrEmpty(dir + "/state.json"), nullptr, false);
  Recorded r{.control_address = dir + "/control.sock", .sandbox_id = id, .sandbox = {},
             .cgroups_path = ""};
  if (!st.is_object()) return r;
  try {
    r.control_address = st.value("controlAddress", r.control_address);
    r.sandbox_id = st.value("sandboxId", r.sandbox_id);
    r.sandbox.pid = st.value("sandboxPid", 0);
    r.sandbox.start_time = st.value("sandboxStartTime", uint64_t{0});
    r.sandbox.boot_id = st.value("sandboxBootId", "");
    r.cgroups_path = st.value("cgroupsPath", "");
  } catch (const nlohmann::json::exception&) {
  }
  return r;
}

}  // namespace

SandboxConfig SandboxConfig::FromEnv(const std::string& ns) {
  SandboxConfig c;
  if (const char* b = getenv("SEEDSC_BINARY"); b != nullptr && *b) {
    c.seedsc = b;
  } else if (std::string beside = SelfDir() + "/seedsc"; access(beside.c_str(), X_OK) == 0) {
    c.seedsc = beside;
  } else {
    c.seedsc = FindOnPath("seedsc");
  }
  if (const char* r = getenv("SEEDSC_ROOT"); r != nullptr && *r) {
    c.root = r;
  } else {
    c.root = absl::StrCat("/run/containerd/seedsc/", ns.empty() ? "default" : ns);
  }
  c.ns = ns.empty() ? "default" : ns;
  const char* sd = getenv("SEEDD_STATE_DIR");
  c.seedd_state_dir = sd != nullptr && *sd ? sd : "/run/seedd";
  if (const char* fa = getenv("SEEDD_FRI_ADDRESS"); fa != nullptr) c.seedd_fri_address = fa;
  if (const char* f = getenv("SEEDSC_FLAGS"); f != nullptr) {
    for (absl::string_view s : absl::StrSplit(f, ' ', absl::SkipEmpty())) {
      c.flags.emplace_back(s);
    }
  }
  return c;
}

std::vector<std::string> SandboxConfig::Argv() const {
  std::vector<std::string> a = {seedsc, "--root=" + root};
  a.insert(a.end(), flags.begin(), flags.end());
  return a;
}

absl::StatusOr<std::unique_ptr<Sandbox>> Sandbox::Create(const SandboxConfig& cfg,
                                                        const std::string& id,
                                                        const std::string& bundle,
                                                        const std::string& console_socket) {
  std::unique_ptr<Sandbox> sb(new Sandbox());
  sb->cfg_ = cfg;
  sb->id_ = id;
  std::string pidfile = bundle + "/init.pid";
  std::string errfile = bundle + "/seedsc.log";
  std::vector<std::string> argv = cfg.Argv();
  for (const char* a : {"create", "--bundle"}) argv.emplace_back(a);
  argv.push_back(bundle);
  argv.push_back("--pid-file");
  argv.push_back(pidfile);
  if (!console_socket.empty()) argv.push_back("--console-socket=" + console_socket);
  argv.push_back(id);
  absl::StatusOr<int> st = RunTool(argv, errfile, absl::Seconds(60));
  if (!st.ok()) return st.status();
  if (*st != 0) {
    std::string err(absl::StripAsciiWhitespace(ReadFileOrEmpty(errfile)));
    return absl::InternalError(absl::StrCat("seedsc create failed (status ", ExitCode(*st),
                                            "): ", err));
  }
  std::string pid(absl::StripAsciiWhitespace(ReadFileOrEmpty(pidfile)));
  sb->pid_ = atoi(pid.c_str());
  if (sb->pid_ <= 0) {
    return absl::InternalError(absl::StrCat("seedsc create wrote no pid to ", pidfile));
  }
  const Recorded rec = ReadRecorded(cfg.root, id);
  sb->joined_ = rec.sandbox_id != id;
  if (sb->joined_) sb->joined_cgroup_ = rec.cgroups_path;
  // Who the sandbox process is (the pid file names it too, but a pid may
  // name another process once it has exited): Destroy SIGKILLs it.
  sb->process_ = rec.sandbox;
  if (sb->process_.pid != sb->pid_) sb->process_ = {.pid = 0, .start_time = 0, .boot_id = ""};
  const std::string& sock = rec.control_address;
  absl::Status last;
  for (int i = 0; i < 200; ++i) {  // the socket exists once create returned
    auto c = ttrpc::Client::Dial(sock);
    if (c.ok()) {
      absl::MutexLock l(&sb->mu_);
      sb->client_ = std::move(*c);
      return sb;
    }
    last = c.status();
    usleep(10 * 1000);
  }
  sb->Destroy();
  return absl::UnavailableError(absl::StrCat("sandbox control socket: ", last.ToString()));
}

absl::StatusOr<std::unique_ptr<Sandbox>> Sandbox::Adopt(const std::string& id, pid_t pid,
                                                       const std::string& control_address,
                                                       std::function<void()> release) {
  std::unique_ptr<Sandbox> sb(new Sandbox());
  sb->id_ = id;
  sb->pid_ = pid;
  sb->release_ = std::move(release);
  absl::StatusOr<std::unique_ptr<ttrpc::Client>> c = ttrpc::Client::Dial(control_address);
  if (!c.ok()) {
    sb->Destroy();
    return absl::UnavailableError(absl::StrCat("forked sandbox ", id, ": control socket ",
                                               control_address, ": ", c.status().message()));
  }
  absl::MutexLock l(&sb->mu_);
  sb->client_ = std::move(*c);
  return sb;
}

absl::Status Sandbox::Call(const std::string& method, const google::protobuf::MessageLite& req,
                           google::protobuf::MessageLite* resp, absl::Duration timeout) {
  std::shared_ptr<ttrpc::Client> c;
  {
    absl::MutexLock l(&mu_);
    c = client_;
  }
  if (c == nullptr) return absl::UnavailableError("sandbox is gone");
  return c->Call(kControlService, method, req, resp, timeout);
}

bool Sandbox::alive() {
  absl::MutexLock l(&mu_);
  return client_ != nullptr && client_->alive();
}

void Sandbox::Destroy() {
  std::shared_ptr<ttrpc::Client> c;
  {
    absl::MutexLock l(&mu_);
    if (destroyed_) return;
    destroyed_ = true;
    c = std::move(client_);
  }
  const absl::Duration t0 = sentry::MonotonicNow();
  if (release_ != nullptr) {
    // A fork is seedd's: it kills it at once (early destroy) and forgets it.
    if (c != nullptr) c->Close();
    release_();
    if (ShimDebugEnabled()) {
      ShimLog("destroy %s (forked): %.1f ms", id_, absl::ToDoubleMilliseconds(sentry::MonotonicNow() - t0));
    }
    return;
  }
  // A container in its pod's sandbox: `seedsc delete` below has the
  // sandbox forget it; the sandbox serves the pod on (pid_ is the sandbox's
  // process, or the sandbox's thread that names a container with a pid
  // namespace of its own: gone with the container).
  if (c != nullptr && !joined_) {
    c->CallRaw(kControlService, "Shutdown", "", absl::Seconds(2)).IgnoreError();
  }
  // Pending calls (Wait) fail with Unavailable now.
  if (c != nullptr) c->Close();
  if (!joined_) {
    // Shutdown has SIGKILLed every task; the sandbox process itself only
    // lingers to let the reply out, so end it now rather than wait. It is
    // not our child but pid 2 of its own pid namespace, whose pid 1 (our
    // child once `seedsc create` has exited) reaps it. Only if its pid
    // still names it (issue 16): it may have died long before.
    container::EndProcess(process_, absl::Seconds(2)).IgnoreError();
  }
  const absl::Duration t1 = sentry::MonotonicNow();
  if (Exists(absl::StrCat(cfg_.root, "/", id_))) {
    absl::Status s = ForceDelete(cfg_, id_);
    if (!s.ok()) ShimLog("delete %s: %s", id_, s.ToString());
  }
  if (ShimDebugEnabled()) {
    ShimLog("destroy %s: shutdown+exit %.1f ms, state cleanup %.1f ms", id_,
            absl::ToDoubleMilliseconds(t1 - t0), absl::ToDoubleMilliseconds(sentry::MonotonicNow() - t1));
  }
}

absl::Status ForceDelete(const SandboxConfig& cfg, const std::string& id) {
  std::vector<std::string> argv = cfg.Argv();
  argv.emplace_back("delete");
  argv.emplace_back("--force");
  argv.push_back(id);
  absl::StatusOr<int> st = RunTool(argv, "", absl::Seconds(10));
  if (!st.ok()) return st.status();
  if (*st != 0) return absl::InternalError(absl::StrCat("seedsc delete --force ", id, " failed"));
  return absl::OkStatus();
}

}  // namespace seedvisor::shim
