#include "runsc/cmd_common.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace seedvisor::runsc {

int Fail(const absl::Status& s) { return Fail(std::string(s.message())); }

int Fail(const std::string& msg) {
  std::fprintf(stderr, "seedsc: %s\n", msg.c_str());
  return 1;
}

bool ParseArgs(FlagSet& fs, const std::vector<std::string>& args, size_t min_pos, size_t max_pos,
               const char* usage, std::vector<std::string>* pos) {
  auto rest = fs.Parse(args);
  if (!rest.ok()) {
    PrintUsageError(std::string(rest.status().message()));
    return false;
  }
  if (fs.help_requested()) {
    PrintCommandHelp(fs, usage);
    return false;
  }
  if (rest->size() < min_pos || rest->size() > max_pos) {
    PrintUsageError(absl::StrCat("usage: seedsc ", usage));
    return false;
  }
  *pos = *rest;
  return true;
}

void PrintCommandHelp(const FlagSet& fs, const std::string& usage, const std::string& about) {
  std::string text = about;
  for (const Command& c : Commands()) {
    if (text.empty() && fs.command() == c.name) text = c.synopsis;
  }
  std::string flags = fs.Usage();
  std::printf("Usage: seedsc %s\n\n%s\n", usage.c_str(), text.c_str());
  if (!flags.empty()) std::printf("\nFlags:\n%s", flags.c_str());
  std::printf("\nGlobal flags (before the command): see \"seedsc help\".\n");
}

absl::StatusOr<container::State> LoadContainer(const GlobalConfig& cfg, const std::string& id) {
  return container::LoadState(cfg.root, id);
}

std::vector<std::string> BootGlobalFlags(const GlobalConfig& cfg) {
  std::vector<std::string> f = {"--root=" + cfg.root, "--platform=" + cfg.platform,
                                "--network=" + cfg.network};
  if (cfg.debug) f.push_back("--debug");
  if (!cfg.debug_log.empty()) f.push_back("--debug-log=" + cfg.debug_log);
  if (cfg.strace) f.push_back("--strace");
  if (cfg.net_raw) f.push_back("--net-raw");
  f.push_back(cfg.systrap_patch ? "--systrap-patch" : "--systrap-patch=false");
  return f;
}

unsigned TestStallSeconds(const std::string& where) {
  const char* v = std::getenv("SEEDSC_TEST_BOOT_STALL");
  if (v == nullptr) return 0;
  const std::string s = v;
  const size_t colon = s.find(':');
  if (colon == std::string::npos || s.substr(0, colon) != where) return 0;
  const int secs = std::atoi(s.c_str() + colon + 1);
  return secs > 0 ? static_cast<unsigned>(secs) : 0;
}

absl::StatusOr<absl::Duration> BootTimeout(const GlobalConfig& cfg) {
  absl::Duration d;
  if (cfg.boot_timeout == "0") return absl::InfiniteDuration();
  if (!absl::ParseDuration(cfg.boot_timeout, &d) || d <= absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--boot-timeout: \"", cfg.boot_timeout, "\" is not a duration (e.g. 60s, 2m; 0 waits forever)"));
  }
  return d;
}

int ParseSignal(const std::string& s) {
  if (s.empty()) return 0;
  if (isdigit(static_cast<unsigned char>(s[0]))) {
    int n = std::atoi(s.c_str());
    return n > 0 && n < 65 ? n : 0;
  }
  std::string name = absl::AsciiStrToUpper(s);
  if (name.rfind("SIG", 0) == 0) name = name.substr(3);
  for (int i = 1; i < 32; ++i) {
    const char* abbrev = sigabbrev_np(i);
    if (abbrev != nullptr && name == abbrev) return i;
  }
  if (name.rfind("RTMIN+", 0) == 0) return SIGRTMIN + std::atoi(name.c_str() + 6);
  return 0;
}

bool WritePidFile(const std::string& path, int pid) {
  if (path.empty()) return true;
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return false;
  bool ok = std::fprintf(f, "%d", pid) > 0;
  ok = std::fclose(f) == 0 && ok;
  return ok && rename(tmp.c_str(), path.c_str()) == 0;
}

std::string OwnFdPath(int fd) {
  if (fcntl(fd, F_GETFD) < 0) return "";
  return absl::StrCat("/proc/", getpid(), "/fd/", fd);
}

std::string AbsPath(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char buf[4096];
  if (getcwd(buf, sizeof(buf)) == nullptr) return path;
  if (path.empty() || path == ".") return buf;
  return absl::StrCat(buf, "/", path);
}

std::vector<std::string> TakeRepeated(std::vector<std::string>* args, const std::string& name,
                                      const std::vector<std::string>& bools,
                                      const std::string& alias) {
  std::vector<std::string> out, rest;
  std::vector<std::string> forms = {"--" + name, "-" + name};
  if (!alias.empty()) forms.insert(forms.end(), {"--" + alias, "-" + alias});
  size_t i = 0;
  for (; i < args->size(); ++i) {
    const std::string& s = (*args)[i];
    if (s == "--" || (!s.empty() && s[0] != '-')) break;  // positionals start
    bool taken = false;
    for (const std::string& f : forms) {
      if (s == f && i + 1 < args->size()) {
        out.push_back((*args)[++i]);
      } else if (s.rfind(f + "=", 0) == 0) {
        out.push_back(s.substr(f.size() + 1));
      } else {
        continue;
      }
      taken = true;
      break;
    }
    if (!taken) {
      rest.push_back(s);
      // Another flag's separate value ("--cwd /x") is not a positional.
      std::string n = s.substr(s.rfind('-', 1) + 1);
      bool is_bool = false;
      for (const auto& bname : bools) is_bool |= n == bname;
      if (s.find('=') == std::string::npos && !is_bool && i + 1 < args->size()) {
        rest.push_back((*args)[++i]);
      }
    }
  }
  for (; i < args->size(); ++i) rest.push_back((*args)[i]);
  *args = rest;
  return out;
}

}  // namespace seedvisor::runsc
