#include "seedd/veth_guard.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

extern char** environ;

namespace seedvisor::seedd {
namespace {

// `tool` (iptables, ip6tables) where root's PATH would find it; bazel's
// test environment has no sbin in PATH.
std::string Find(const std::string& tool) {
  for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
    std::string p = absl::StrCat(dir, "/", tool);
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

struct Ran {
  bool ok = false;
  std::string out;  // stdout and stderr
};

// Runs `argv` (argv[0] a full path) with "-w" (wait for the xtables lock)
// after it.
Ran Run(std::vector<std::string> argv) {
  argv.insert(argv.begin() + 1, "-w");
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return {false, "pipe failed"};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, p[1], 2);
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  Ran r;
  char buf[512];
  for (ssize_t n; (n = read(p[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (r.out.size() < 4096) r.out.append(buf, size_t(n));
  }
  close(p[0]);
  if (rc != 0) return {false, absl::StrCat("cannot run it: ", strerror(rc))};
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return r;
}

std::string Chain(const std::string& prefix) { return "SVPOOL-" + prefix; }

// Takes out every jump to the chain (and the forward drop) that an
// earlier run left, then the chain.
void Remove(const std::string& tool, const std::string& prefix) {
  const std::string in = prefix + "+", chain = Chain(prefix);
  while (Run({tool, "-D", "INPUT", "-i", in, "-j", chain}).ok) {
  }
  while (Run({tool, "-D", "FORWARD", "-i", in, "-j", "DROP"}).ok) {
  }
  Run({tool, "-F", chain});
  Run({tool, "-X", chain});
}

absl::Status Install(const std::string& name, const std::string& prefix) {
  const std::string tool = Find(name);
  if (tool.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "veth pool: ", name, " not found (in /usr/sbin, /sbin, /usr/bin, /bin): without its "
        "rules a guest would reach the host's services at its host end's address"));
  }
  Remove(tool, prefix);
  const std::string in = prefix + "+", chain = Chain(prefix);
  std::vector<std::vector<std::string>> cmds = {{tool, "-N", chain}};
  if (name == "ip6tables") {
    // IPv6 needs neighbour discovery before anything reaches the host end:
    // the guest's solicitations (to the host end's solicited-node group,
    // which addrtype does not call LOCAL) and its advertisements (answers
    // to the host end's). Only as RFC 4861 7.1 takes them (hop limit 255:
    // from the link itself); the kernel answers only for the receiving
    // device's own addresses, and what a guest advertises about itself is
    // what a neighbour on any link may say. Nothing else of ICMPv6 (router
    // or redirect messages) passes.
    for (const char* type : {"neighbour-solicitation", "neighbour-advertisement"}) {
      cmds.push_back({tool, "-A", chain, "-p", "ipv6-icmp", "--icmpv6-type", type, "-m", "hl",
                      "--hl-eq", "255", "-j", "ACCEPT"});
    }
  }
  const std::vector<std::vector<std::string>> rules = {
      // Only to the host end's own addresses: the socket match below finds
      // a listener on any local address, the node's LAN address or another
      // host end's among them, which a guest reaches through its host end
      // as its gateway. addrtype with --limit-iface-in asks whether the
      // destination is local to the interface the packet came in on
      // (inet_dev_addr_type(), ipv6_chk_addr() with the device).
      {tool, "-A", chain, "-m", "addrtype", "!", "--dst-type", "LOCAL", "--limit-iface-in", "-j",
       "DROP"},
      // A socket of its own: an established connection, or a listener
      // bound to the host end's address (not the wildcard).
      {tool, "-A", chain, "-m", "socket", "-j", "ACCEPT"},
      {tool, "-A", chain, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"},
      {tool, "-A", chain, "-j", "DROP"},
      {tool, "-I", "INPUT", "1", "-i", in, "-j", chain},
      {tool, "-I", "FORWARD", "1", "-i", in, "-j", "DROP"},
  };
  cmds.insert(cmds.end(), rules.begin(), rules.end());
  for (const std::vector<std::string>& c : cmds) {
    Ran r = Run(c);
    if (!r.ok) {
      Remove(tool, prefix);
      return absl::InternalError(absl::StrCat("veth pool: `", absl::StrJoin(c, " "),
                                              "` failed: ", absl::StripAsciiWhitespace(r.out)));
    }
  }
  return absl::OkStatus();
}

void RemoveAll(const std::string& prefix) {
  for (const char* name : {"iptables", "ip6tables"}) {
    std::string tool = Find(name);
    if (!tool.empty()) Remove(tool, prefix);
  }
}

// How many GuardHostEnds() of each prefix this process has not undone
// (pools of one prefix share the rules).
std::mutex g_mu;
std::map<std::string, int>& Users() {
  static auto* users = new std::map<std::string, int>;
  return *users;
}

}  // namespace

absl::Status GuardHostEnds(const std::string& prefix) {
  std::lock_guard l(g_mu);
  if (Users()[prefix]++ > 0) return absl::OkStatus();
  absl::Status s = Install("iptables", prefix);
  if (s.ok()) {
    s = Install("ip6tables", prefix);
    // No IPv6 in the kernel: nothing reaches the host over it either.
    if (!s.ok() && access("/proc/net/if_inet6", F_OK) != 0) s = absl::OkStatus();
  }
  if (!s.ok()) {
    RemoveAll(prefix);
    Users().erase(prefix);
  }
  return s;
}

void UnguardHostEnds(const std::string& prefix) {
  std::lock_guard l(g_mu);
  auto it = Users().find(prefix);
  if (it == Users().end() || --it->second > 0) return;
  Users().erase(it);
  RemoveAll(prefix);
}

}  // namespace seedvisor::seedd
