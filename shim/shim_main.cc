// containerd-shim-seedsc-v1: the containerd shim v2 for seedsc sandboxes
// (runtime io.containerd.seedsc.v1).
//
//   <shim> -namespace NS -address GRPC -publish-binary BIN -id ID start
//       makes the shim socket, starts the daemon, prints the address;
//   <shim> -namespace NS -address GRPC -id ID -bundle B delete
//       cleans up after a dead shim, prints a DeleteResponse;
// The daemon is a fork of `start` (no re-exec) that serves the socket.
//
// See shared/reference/containerd-shim-v2.md §1 for what containerd 1.6
// expects of each.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "runsc/container/cgroup.h"
#include "shim/events.h"
#include "shim/log.h"
#include "shim/proto/shim.pb.h"
#include "shim/reaper.h"
#include "shim/sandbox.h"
#include "shim/seed_fork.h"
#include "shim/task_service.h"
#include "shim/ttrpc/server.h"
#include "shim/ttrpc/socket.h"
#include "shim/util.h"

namespace seedvisor::shim {
namespace {

struct Flags {
  std::string ns = "default";
  std::string address;
  std::string publish_binary;
  std::string id;
  std::string bundle;
  std::string socket;
  bool debug = false;
  bool version = false;
  std::string action;
};

// Go `flag` syntax: -name value, -name=value, --name=value; bools alone.
bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.size() < 2 || a[0] != '-') {
      if (f->action.empty()) f->action = a;
      continue;
    }
    std::string name = a.substr(a[1] == '-' ? 2 : 1);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (name == "debug" || name == "v") {
      (name == "debug" ? f->debug : f->version) = true;
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        fprintf(stderr, "flag needs an argument: -%s\n", name.c_str());
        return false;
      }
      value = argv[++i];
    }
    std::string* dst = nullptr;
    if (name == "namespace") dst = &f->ns;
    else if (name == "address") dst = &f->address;
    else if (name == "publish-binary") dst = &f->publish_binary;
    else if (name == "id") dst = &f->id;
    else if (name == "bundle") dst = &f->bundle;
    else if (name == "socket") dst = &f->socket;
    if (dst == nullptr) {
      fprintf(stderr, "flag provided but not defined: -%s\n", name.c_str());
      return false;
    }
    *dst = value;
  }
  return true;
}

// A stable 128-bit FNV-1a of s, as hex: the socket name. containerd only
// needs a path under 106 bytes that is unique per (address, ns, id).
std::string HashHex(const std::string& s) {
  uint64_t h1 = 0xcbf29ce484222325ULL, h2 = 0x84222325cbf29ce4ULL;
  for (unsigned char c : s) {
    h1 = (h1 ^ c) * 0x100000001b3ULL;
    h2 = (h2 ^ c) * 0x100000001b3ULL;
    h2 ^= h2 >> 29;
  }
  return absl::StrFormat("%016x%016x", h1, h2);
}

std::string ReadAll(const std::string& path) {
  std::string out;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

int Serve(const Flags& f, int listen_fd);

// The shim group of container `id` (start runs in its bundle): the pod's
// sandbox id for a CRI application container (config.json annotations
// io.kubernetes.cri.container-type=container, io.kubernetes.cri.sandbox-id),
// else its own id.
std::string GroupOf(const std::string& id) {
  nlohmann::json spec = nlohmann::json::parse(ReadAll("config.json"), nullptr, false);
  if (!spec.is_object() || !spec.contains("annotations") || !spec["annotations"].is_object()) {
    return id;
  }
  const nlohmann::json& a = spec["annotations"];
  auto str = [&a](const char* key) {
    return a.contains(key) && a[key].is_string() ? a[key].get<std::string>() : std::string();
  };
  std::string sandbox = str("io.kubernetes.cri.sandbox-id");
  if (str("io.kubernetes.cri.container-type") != "container" || sandbox.empty()) return id;
  return sandbox;
}

int Start(const Flags& f) {
  // Runtime options (a protobuf Any) arrive on stdin; seedsc takes its
  // settings from the environment instead, but the pipe is drained.
  char buf[4096];
  while (read(0, buf, sizeof(buf)) > 0) {
  }
  // SEEDSC_SHIM_SOCKET_DIR (from containerd's environment) lets a test keep
  // its shims' sockets apart from other containerds on the host.
  const char* env_dir = getenv("SEEDSC_SHIM_SOCKET_DIR");
  const std::string dir = env_dir != nullptr && *env_dir ? env_dir : "/run/containerd/s";
  if (env_dir == nullptr || !*env_dir) mkdir("/run/containerd", 0711);
  mkdir(dir.c_str(), 0700);
  // One shim per pod (shim v2 grouping, as runc's and runsc's shims do):
  // a pod's application container is served by the shim of its sandbox
  // container, whose socket is named after the sandbox id.
  const std::string group = GroupOf(f.id);
  const std::string path = absl::StrCat(dir, "/", HashHex(absl::StrCat(f.address, "/", f.ns, "/", group)));
  const std::string address = "unix://" + path;
  absl::StatusOr<int> lfd = ttrpc::ListenUnix(path);
  bool running = false;
  if (!lfd.ok() && lfd.status().code() == absl::StatusCode::kAlreadyExists) {
    if (group != f.id && ttrpc::DialUnix(path).ok()) {
      running = true;  // the pod's shim: it takes this container's Create
    } else if (!ttrpc::DialUnix(path).ok()) {
      // A socket from a shim that died: nobody answers on it.
      unlink(path.c_str());
      lfd = ttrpc::ListenUnix(path);
    }
  }
  if (!running && !lfd.ok()) {
    fprintf(stderr, "%s\n", lfd.status().ToString().c_str());
    return 1;
  }
  if (!running) chmod(path.c_str(), 0600);
  // The bundle's `address` file lets containerd reconnect after a restart.
  {
    int fd = open(".address", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, address.data(), address.size()) != static_cast<ssize_t>(address.size()) ||
        close(fd) < 0 || rename(".address", "address") < 0) {
      fprintf(stderr, "writing the address file: %s\n", strerror(errno));
      if (!running) unlink(path.c_str());
      return 1;
    }
  }
  if (running) {
    fputs(address.c_str(), stdout);
    fflush(stdout);
    return 0;
  }

  // The daemon is a fork of this process, not a re-exec (the Go shims
  // re-exec because Go cannot fork): one exec less on containerd's start
  // path. Nothing here has started a thread yet, so the fork is safe.
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    unlink(path.c_str());
    return 1;
  }
  if (pid == 0) {
    // The daemon must not keep start's stdout/stderr: containerd reads them
    // to EOF. stderr goes to the bundle's log fifo (containerd holds it).
    setsid();
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    int log = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (log >= 0) fcntl(log, F_SETFL, 0);
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(log >= 0 ? log : devnull, 2);
    if (devnull > 2) close(devnull);
    if (log > 2) close(log);
    _exit(Serve(f, *lfd));
  }
  close(*lfd);
  // No trailing newline (containerd trims, some versions parse verbatim).
  fputs(address.c_str(), stdout);
  fflush(stdout);
  return 0;
}

int Delete(const Flags& f) {
  std::string bundle = f.bundle;
  if (bundle.empty()) {
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) != nullptr) bundle = cwd;
  }
  Reaper::Get().Start();
  SandboxConfig cfg = SandboxConfig::FromEnv(f.ns);
  struct stat st;
  if (!f.id.empty() && stat(absl::StrCat(cfg.root, "/", f.id).c_str(), &st) == 0) {
    absl::Status s = ForceDelete(cfg, f.id);
    if (!s.ok()) fprintf(stderr, "%s\n", s.ToString().c_str());
  }
  // A container forked from a seedd seed: seedd holds its sandbox.
  if (absl::StatusOr<oci::Spec> spec = oci::LoadBundle(bundle);
      !f.id.empty() && spec.ok() && !SeedOf(*spec).empty()) {
    absl::Status s = DestroyForked(cfg, f.id);
    if (!s.ok() && !absl::IsNotFound(s)) fprintf(stderr, "%s\n", s.ToString().c_str());
    container::RemoveCgroups(container::CgroupPathFor(*spec, f.id), cfg.root).IgnoreError();
  }
  UnmountAll(bundle + "/rootfs");
  // A stale socket goes, a live one stays: a pod's application container
  // names its pod's shim socket in `address`, and that shim still serves
  // the pod's other containers after this one's task is gone (containerd
  // runs delete after every teardown, not only after a shim died).
  std::string address = ReadAll(bundle + "/address");
  if (!address.empty()) {
    if (absl::StatusOr<int> live = ttrpc::DialUnix(address); live.ok()) {
      close(*live);
    } else {
      unlink(ttrpc::SocketPath(address).c_str());
    }
  }
  ::containerd::task::v2::DeleteResponse resp;
  resp.set_pid(static_cast<uint32_t>(atoi(ReadAll(bundle + "/init.pid").c_str())));
  resp.set_exit_status(137);  // SIGKILL, as the runc shim reports
  *resp.mutable_exited_at() = Now();
  std::string out = resp.SerializeAsString();
  return fwrite(out.data(), 1, out.size(), stdout) == out.size() ? 0 : 1;
}

int Serve(const Flags& f, int listen_fd) {
  signal(SIGPIPE, SIG_IGN);
  ShimDebugEnabled() = f.debug;
  // SIGTERM/SIGINT: handled by a thread (sigwait); blocked before any
  // thread starts so that every thread inherits the mask.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);

  std::string address = ReadAll("address");
  const std::string socket_path = ttrpc::SocketPath(address);
  Reaper::Get().Start();
  const char* ttrpc_address = getenv("TTRPC_ADDRESS");
  static Publisher* publisher = new Publisher(ttrpc_address ? ttrpc_address : "", f.ns);
  auto exit_now = [socket_path]() {
    publisher->Flush(absl::Seconds(2));
    if (!socket_path.empty()) unlink(socket_path.c_str());
    _exit(0);
  };
  std::thread([term, exit_now]() {
    int sig;
    sigwait(&term, &sig);
    exit_now();
  }).detach();

  // on_shutdown runs once the Shutdown reply has been written.
  static TaskService* service =
      new TaskService(publisher, SandboxConfig::FromEnv(f.ns), exit_now);
  ttrpc::Server server;
  service->Register(&server);
  server.AdoptListener(listen_fd);
  server.Serve();
  exit_now();
  return 0;
}

}  // namespace
}  // namespace seedvisor::shim

int main(int argc, char** argv) {
  seedvisor::shim::Flags f;
  if (!seedvisor::shim::ParseFlags(argc, argv, &f)) return 2;
  if (f.version) {
    printf("containerd-shim-seedsc-v1 (seedvisor)\n");
    return 0;
  }
  if (f.action == "start") return seedvisor::shim::Start(f);
  if (f.action == "delete") return seedvisor::shim::Delete(f);
  fprintf(stderr, "usage: %s -namespace NS -address ADDR -id ID {start|delete}\n", argv[0]);
  return 2;
}
