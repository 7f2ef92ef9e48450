// native_seedsc: a reference "sandbox" for the containerd shim test. It
// speaks seedsc's command line (`--root R create --bundle B --pid-file P ID`,
// `delete --force ID`) and serves the sandbox control protocol
// (sentry/control/control.proto) on R/ID/control.sock, but runs the
// container's processes natively in a chroot of the bundle's rootfs. With it
// the shim test proves itself right independently of the sentry, as the
// e2e tests do with their native reference.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "runsc/container/cgroup.h"
#include "runsc/container/host_process.h"
#include "runsc/oci/spec.h"
#include "sentry/control/control.pb.h"
#include "shim/ttrpc/server.h"

namespace {

namespace ctl = seedvisor::control::v1;
using seedvisor::ttrpc::CallContext;

int64_t NowNanos() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

struct Proc {
  pid_t pid;
  std::string exec_id;
  bool exited = false;
  int wait_status = 0;
  int64_t exited_at = 0;
};

// Writes `limit` (<= 0: "max") as the pids.max of cgroup `path`.
absl::Status SetExactPidsMax(const std::string& path, int64_t limit) {
  if (path.empty()) return absl::FailedPreconditionError("native_seedsc: no cgroup");
  std::ofstream f("/sys/fs/cgroup/pids/" + path + "/pids.max");
  f << (limit > 0 ? std::to_string(limit) : "max");
  f.close();
  if (!f) return absl::InternalError("native_seedsc: writing pids.max of " + path);
  return absl::OkStatus();
}

class Sandbox {
 public:
  std::string id, rootfs, dir;
  std::vector<std::string> args, env;
  std::string cwd = "/";
  std::string cgroup;  // the sandbox's cgroup path, or ""

  absl::Mutex mu;
  int64_t pids_limit ABSL_GUARDED_BY(mu) = 0;
  std::map<pid_t, Proc> procs ABSL_GUARDED_BY(mu);
  pid_t init = 0 ABSL_GUARDED_BY(mu);
  bool paused ABSL_GUARDED_BY(mu) = false;

  absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                              const std::vector<std::string>& envv, const std::string& wd,
                              const ctl::Stdio& io, const std::string& exec_id) {
    if (io.terminal()) return absl::UnimplementedError("native_seedsc: no terminals");
    auto open_or = [](const std::string& p, int flags) {
      return open(p.empty() ? "/dev/null" : p.c_str(), flags | O_CLOEXEC);
    };
    int fds[3] = {open_or(io.stdin(), O_RDONLY), open_or(io.stdout(), O_WRONLY),
                  open_or(io.stderr(), O_WRONLY)};
    for (int fd : fds) {
      if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("open stdio: ", strerror(errno)));
    }
    std::vector<char*> a, e;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    for (const auto& s : envv) e.push_back(const_cast<char*>(s.c_str()));
    e.push_back(nullptr);
    absl::MutexLock l(&mu);
    pid_t pid = fork();
    if (pid == 0) {
      for (int i = 0; i < 3; ++i) dup2(fds[i], i);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      if (chroot(rootfs.c_str()) < 0 || chdir(wd.empty() ? "/" : wd.c_str()) < 0) _exit(126);
      environ = e.data();
      execvp(a[0], a.data());
      _exit(127);
    }
    for (int fd : fds) close(fd);
    if (pid < 0) return absl::InternalError("fork");
    procs[pid] = Proc{pid, exec_id};
    return pid;
  }

  void Reap() {
    for (;;) {
      int st;
      pid_t pid = waitpid(-1, &st, 0);
      if (pid < 0) {
        if (errno == ECHILD) usleep(5000);
        continue;
      }
      absl::MutexLock l(&mu);
      auto it = procs.find(pid);
      if (it == procs.end()) continue;
      it->second.exited = true;
      it->second.wait_status = st;
      it->second.exited_at = NowNanos();
      if (pid == init) {  // like a pid namespace: the rest dies with init
        for (auto& [p, pr] : procs) {
          if (!pr.exited) kill(p, SIGKILL);
        }
      }
    }
  }

  absl::StatusOr<pid_t> Resolve(int32_t pid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    pid_t p = pid == 0 ? init : pid;
    if (p == 0 || procs.count(p) == 0) return absl::NotFoundError("no such process");
    return p;
  }
};

uint32_t ExitStatus(int st) {
  return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

void Register(seedvisor::ttrpc::Server* s, Sandbox* sb) {
  const std::string svc = "seedvisor.control.v1.Control";
  s->RegisterMethod<ctl::StartRequest, ctl::StartResponse>(
      svc, "Start", [sb](const CallContext&, const ctl::StartRequest& r) -> absl::StatusOr<ctl::StartResponse> {
        {
          absl::MutexLock l(&sb->mu);
          if (sb->init != 0) return absl::FailedPreconditionError("already started");
        }
        auto pid = sb->Spawn(sb->args, sb->env, sb->cwd, r.stdio(), "");
        if (!pid.ok()) return pid.status();
        absl::MutexLock l(&sb->mu);
        sb->init = *pid;
        ctl::StartResponse out;
        out.set_pid(*pid);
        return out;
      });
  s->RegisterMethod<ctl::ExecRequest, ctl::ExecResponse>(
      svc, "Exec", [sb](const CallContext&, const ctl::ExecRequest& r) -> absl::StatusOr<ctl::ExecResponse> {
        std::vector<std::string> args(r.args().begin(), r.args().end());
        std::vector<std::string> env(r.env().begin(), r.env().end());
        auto pid = sb->Spawn(args, env, r.cwd(), r.stdio(), r.exec_id());
        if (!pid.ok()) return pid.status();
        ctl::ExecResponse out;
        out.set_pid(*pid);
        return out;
      });
  s->RegisterMethod<ctl::SignalRequest, ctl::SignalResponse>(
      svc, "Signal", [sb](const CallContext&, const ctl::SignalRequest& r) -> absl::StatusOr<ctl::SignalResponse> {
        absl::MutexLock l(&sb->mu);
        if (r.all()) {
          for (auto& [p, pr] : sb->procs) {
            if (!pr.exited) kill(p, static_cast<int>(r.signal()));
          }
          return ctl::SignalResponse();
        }
        auto p = sb->Resolve(r.pid());
        if (!p.ok()) return p.status();
        if (sb->procs[*p].exited) return absl::NotFoundError("process exited");
        kill(*p, static_cast<int>(r.signal()));
        return ctl::SignalResponse();
      });
  s->RegisterMethod<ctl::WaitRequest, ctl::WaitResponse>(
      svc, "Wait", [sb](const CallContext&, const ctl::WaitRequest& r) -> absl::StatusOr<ctl::WaitResponse> {
        absl::MutexLock l(&sb->mu);
        auto p = sb->Resolve(r.pid());
        if (!p.ok()) return p.status();
        Proc* pr = &sb->procs[*p];
        sb->mu.Await(absl::Condition(&pr->exited));
        ctl::WaitResponse out;
        out.set_exit_status(ExitStatus(pr->wait_status));
        out.set_wait_status(pr->wait_status);
        out.set_exited_at_unix_nanos(pr->exited_at);
        return out;
      });
  s->RegisterMethod<ctl::StateRequest, ctl::StateResponse>(
      svc, "State", [sb](const CallContext&, const ctl::StateRequest&) -> absl::StatusOr<ctl::StateResponse> {
        absl::MutexLock l(&sb->mu);
        ctl::StateResponse out;
        out.set_container_id(sb->id);
        out.set_sandbox_pid(getpid());
        out.set_init_pid(sb->init);
        if (sb->init == 0) {
          out.set_status("created");
        } else if (sb->procs[sb->init].exited) {
          out.set_status("stopped");
          out.set_exit_status(ExitStatus(sb->procs[sb->init].wait_status));
          out.set_exited_at_unix_nanos(sb->procs[sb->init].exited_at);
        } else {
          out.set_status(sb->paused ? "paused" : "running");
        }
        return out;
      });
  s->RegisterMethod<ctl::ProcessesRequest, ctl::ProcessesResponse>(
      svc, "Processes", [sb](const CallContext&, const ctl::ProcessesRequest&) -> absl::StatusOr<ctl::ProcessesResponse> {
        absl::MutexLock l(&sb->mu);
        ctl::ProcessesResponse out;
        for (auto& [p, pr] : sb->procs) {
          if (pr.exited) continue;
          ctl::Process* o = out.add_processes();
          o->set_pid(p);
          o->set_exec_id(pr.exec_id);
        }
        return out;
      });
  s->RegisterMethod<ctl::StatsRequest, ctl::StatsResponse>(
      svc, "Stats", [sb](const CallContext&, const ctl::StatsRequest&) -> absl::StatusOr<ctl::StatsResponse> {
        absl::MutexLock l(&sb->mu);
        ctl::StatsResponse out;
        uint64_t n = 0;
        for (auto& [p, pr] : sb->procs) n += pr.exited ? 0 : 1;
        out.set_pids_current(n);
        out.set_pids_limit(static_cast<uint64_t>(sb->pids_limit));
        return out;
      });
  // The processes run natively in the sandbox's cgroup, so its pids.max is
  // their limit: exactly the one asked for (the shim wrote a value with
  // room for a sentry's own tasks first; there are none here).
  s->RegisterMethod<ctl::UpdateRequest, ctl::UpdateResponse>(
      svc, "Update", [sb](const CallContext&, const ctl::UpdateRequest& r) -> absl::StatusOr<ctl::UpdateResponse> {
        if (!r.has_pids_limit()) return ctl::UpdateResponse();
        absl::MutexLock l(&sb->mu);
        if (absl::Status s = SetExactPidsMax(sb->cgroup, r.pids_limit()); !s.ok()) return s;
        sb->pids_limit = r.pids_limit() > 0 ? r.pids_limit() : 0;
        return ctl::UpdateResponse();
      });
  auto stop_all = [sb](int sig, bool paused) {
    absl::MutexLock l(&sb->mu);
    for (auto& [p, pr] : sb->procs) {
      if (!pr.exited) kill(p, sig);
    }
    sb->paused = paused;
  };
  s->RegisterMethod<ctl::PauseRequest, ctl::PauseResponse>(
      svc, "Pause", [stop_all](const CallContext&, const ctl::PauseRequest&) -> absl::StatusOr<ctl::PauseResponse> {
        stop_all(SIGSTOP, true);
        return ctl::PauseResponse();
      });
  s->RegisterMethod<ctl::ResumeRequest, ctl::ResumeResponse>(
      svc, "Resume", [stop_all](const CallContext&, const ctl::ResumeRequest&) -> absl::StatusOr<ctl::ResumeResponse> {
        stop_all(SIGCONT, false);
        return ctl::ResumeResponse();
      });
  s->RegisterMethod<ctl::ShutdownRequest, ctl::ShutdownResponse>(
      svc, "Shutdown", [sb](const CallContext&, const ctl::ShutdownRequest&) -> absl::StatusOr<ctl::ShutdownResponse> {
        {
          absl::MutexLock l(&sb->mu);
          for (auto& [p, pr] : sb->procs) {
            if (!pr.exited) kill(p, SIGKILL);
          }
        }
        std::string dir = sb->dir;
        std::thread([dir] {
          usleep(20 * 1000);
          std::error_code ec;
          std::filesystem::remove_all(dir, ec);
          _exit(0);
        }).detach();
        return ctl::ShutdownResponse();
      });
}

int Create(const std::string& root, const std::string& bundle, const std::string& pid_file,
           const std::string& id) {
  std::ifstream f(bundle + "/config.json");
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded()) {
    fprintf(stderr, "native_seedsc: %s/config.json: not JSON\n", bundle.c_str());
    return 1;
  }
  auto* sb = new Sandbox();
  sb->id = id;
  std::string rp = j["root"]["path"].get<std::string>();
  sb->rootfs = rp[0] == '/' ? rp : bundle + "/" + rp;
  sb->args = j["process"]["args"].get<std::vector<std::string>>();
  if (j["process"].contains("env")) sb->env = j["process"]["env"].get<std::vector<std::string>>();
  if (j["process"].contains("cwd")) sb->cwd = j["process"]["cwd"].get<std::string>();
  sb->dir = root + "/" + id;
  std::filesystem::create_directories(root);
  if (mkdir(sb->dir.c_str(), 0700) < 0) {
    fprintf(stderr, "native_seedsc: %s: %s\n", sb->dir.c_str(), strerror(errno));
    return 1;
  }
  auto* server = new seedvisor::ttrpc::Server();
  Register(server, sb);
  if (absl::Status s = server->Listen(sb->dir + "/control.sock"); !s.ok()) {
    fprintf(stderr, "native_seedsc: %s\n", s.ToString().c_str());
    return 1;
  }
  // The sandbox's cgroups, as seedsc boot makes and enters them: the shim
  // updates, reads and watches them.
  std::string cgroup;
  if (absl::StatusOr<seedvisor::oci::Spec> spec = seedvisor::oci::LoadBundle(bundle); spec.ok()) {
    cgroup = seedvisor::container::CgroupPathFor(*spec, id);
    std::ofstream(sb->dir + "/cgroup") << cgroup;
    if (absl::Status s = seedvisor::container::ApplyCgroups(*spec, cgroup, root); !s.ok()) {
      fprintf(stderr, "native_seedsc: %s\n", s.ToString().c_str());
      return 1;
    }
    sb->cgroup = cgroup;
    if (int64_t limit = spec->resources.pids_limit.value_or(0); limit > 0) {
      // Natively the cgroup's limit is the container's (see Update).
      if (absl::Status s = SetExactPidsMax(cgroup, limit); !s.ok()) {
        fprintf(stderr, "%s\n", s.ToString().c_str());
        return 1;
      }
      absl::MutexLock l(&sb->mu);
      sb->pids_limit = limit;
    }
  }
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    std::thread([sb] { sb->Reap(); }).detach();
    server->Serve();
    _exit(0);
  }
  std::ofstream(sb->dir + "/pid") << pid;
  // Who the server is, as seedsc records its sandbox's in state.json
  // (runsc/container/state.h): the shim ends the sandbox process only by
  // that identity (issue 16), and then waits for it, before `delete`.
  if (absl::StatusOr<seedvisor::container::ProcessIdentity> who =
          seedvisor::container::IdentityOf(pid);
      who.ok()) {
    nlohmann::json st = {{"sandboxPid", pid},
                         {"sandboxStartTime", who->start_time},
                         {"sandboxBootId", who->boot_id}};
    std::ofstream(sb->dir + "/state.json") << st.dump();
  }
  std::ofstream(pid_file) << pid;
  return 0;
}

int Delete(const std::string& root, const std::string& id) {
  std::string dir = root + "/" + id;
  std::ifstream f(dir + "/pid");
  pid_t pid = 0;
  if (f >> pid && pid > 0) kill(pid, SIGKILL);
  std::string cgroup;
  std::ifstream(dir + "/cgroup") >> cgroup;
  if (!cgroup.empty()) {
    // The container's processes run natively and outlive a killed server:
    // end whatever is left in its cgroup, as a sandbox's death would.
    std::ifstream procs("/sys/fs/cgroup/memory/" + cgroup + "/cgroup.procs");
    for (pid_t p; procs >> p;) kill(p, SIGKILL);
    seedvisor::container::RemoveCgroups(cgroup, root).IgnoreError();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string root = "/run/native_seedsc", bundle = ".", pid_file, cmd;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string& name, std::string* out) {
      if (a == name && i + 1 < argc) {
        *out = argv[++i];
        return true;
      }
      if (a.rfind(name + "=", 0) == 0) {
        *out = a.substr(name.size() + 1);
        return true;
      }
      return false;
    };
    if (value("--root", &root) || value("--bundle", &bundle) || value("--pid-file", &pid_file)) {
      continue;
    }
    if (a.rfind("--", 0) == 0) continue;  // other global flags: ignored
    if (cmd.empty()) {
      cmd = a;
    } else {
      pos.push_back(a);
    }
  }
  if (cmd == "create" && pos.size() == 1) return Create(root, bundle, pid_file, pos[0]);
  if (cmd == "delete" && pos.size() == 1) return Delete(root, pos[0]);
  fprintf(stderr, "native_seedsc: unsupported: %s\n", cmd.c_str());
  return 2;
}
