// config.json's process (args, env, user, capabilities, rlimits...), and
// process.json for exec: parsed and checked, each error naming the field.
#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "runsc/oci/spec.h"
#include "runsc/oci/spec_internal.h"

namespace seedvisor::oci {
namespace {

int RlimitByName(const std::string& n) {
  static const std::map<std::string, int> kNames = {
      {"RLIMIT_CPU", RLIMIT_CPU},       {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_DATA", RLIMIT_DATA},     {"RLIMIT_STACK", RLIMIT_STACK},
      {"RLIMIT_CORE", RLIMIT_CORE},     {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_NPROC", RLIMIT_NPROC},   {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},   {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO}, {"RLIMIT_RTTIME", RLIMIT_RTTIME},
  };
  auto it = kNames.find(n);
  return it == kNames.end() ? -1 : it->second;
}

}  // namespace

int CapabilityNumber(const std::string& c) {
  // config.json spells a capability as its macro name in linux/capability.h
  // (runc's list). libcap's parser accepts more (lower case, bare numbers,
  // trailing blanks), so only that exact form goes to it.
  if (c.size() <= 4 || c.compare(0, 4, "CAP_") != 0 ||
      !std::all_of(c.begin(), c.end(), [](char ch) { return (ch >= 'A' && ch <= 'Z') || ch == '_'; })) {
    return -1;
  }
  cap_value_t v = -1;
  if (cap_from_name(c.c_str(), &v) != 0 || v < 0 || v > CAP_LAST_CAP) return -1;
  return v;
}

uint64_t CapabilityMask(const std::vector<std::string>& names) {
  uint64_t m = 0;
  for (const std::string& n : names) {
    if (int c = CapabilityNumber(n); c >= 0) m |= uint64_t{1} << c;
  }
  return m;
}

absl::Status ParseProcess(Reader& r, const json& p, const std::string& base, Process* out) {
  SV_RET(r.Bool(p, "terminal", base + ".terminal", &out->terminal));
  SV_RET(r.Strings(p, "args", base + ".args", &out->args));
  if (out->args.empty()) return r.Error(base + ".args", "must not be empty");
  if (out->args[0].empty()) return r.Error(base + ".args[0]", "must not be empty");
  SV_RET(r.Strings(p, "env", base + ".env", &out->env));
  for (size_t i = 0; i < out->env.size(); ++i) {
    size_t eq = out->env[i].find('=');
    if (eq == std::string::npos || eq == 0) {
      return r.Error(absl::StrCat(base, ".env[", i, "]"),
                     absl::StrCat("\"", out->env[i], "\" is not of the form KEY=VALUE"));
    }
  }
  out->cwd = "";
  SV_RET(r.Str(p, "cwd", base + ".cwd", &out->cwd));
  if (out->cwd.empty()) return r.Error(base + ".cwd", "must be set (an absolute path)");
  if (out->cwd[0] != '/') {
    return r.Error(base + ".cwd", absl::StrCat("\"", out->cwd, "\" is not an absolute path"));
  }
  SV_RET(r.Bool(p, "noNewPrivileges", base + ".noNewPrivileges", &out->no_new_privileges));
  SV_GET(user, r.Object(p, "user", base + ".user"));
  if (user != nullptr) {
    SV_RET(r.Int(*user, "uid", base + ".user.uid", &out->user.uid));
    SV_RET(r.Int(*user, "gid", base + ".user.gid", &out->user.gid));
    uint32_t umask = 0;
    if (user->contains("umask") && !(*user)["umask"].is_null()) {
      SV_RET(r.Int(*user, "umask", base + ".user.umask", &umask));
      out->user.umask = umask;
    }
    SV_GET(gids, r.Array(*user, "additionalGids", base + ".user.additionalGids"));
    if (gids != nullptr) {
      for (size_t i = 0; i < gids->size(); ++i) {
        const json& g = (*gids)[i];
        if (!g.is_number_unsigned() && !(g.is_number_integer() && g.get<int64_t>() >= 0)) {
          return r.Error(absl::StrCat(base, ".user.additionalGids[", i, "]"),
                         "must be a non-negative integer");
        }
        out->user.additional_gids.push_back(g.get<uint32_t>());
      }
    }
  }
  SV_GET(caps, r.Object(p, "capabilities", base + ".capabilities"));
  if (caps != nullptr) {
    struct {
      const char* key;
      std::vector<std::string>* v;
    } sets[] = {{"bounding", &out->capabilities.bounding},
                {"effective", &out->capabilities.effective},
                {"inheritable", &out->capabilities.inheritable},
                {"permitted", &out->capabilities.permitted},
                {"ambient", &out->capabilities.ambient}};
    for (auto& s : sets) {
      std::string f = absl::StrCat(base, ".capabilities.", s.key);
      SV_RET(r.Strings(*caps, s.key, f, s.v));
      for (size_t i = 0; i < s.v->size(); ++i) {
        if (CapabilityNumber((*s.v)[i]) < 0) {
          return r.Error(absl::StrCat(f, "[", i, "]"),
                         absl::StrCat("unknown capability \"", (*s.v)[i], "\""));
        }
      }
    }
  }
  SV_GET(rl, r.Array(p, "rlimits", base + ".rlimits"));
  if (rl != nullptr) {
    for (size_t i = 0; i < rl->size(); ++i) {
      std::string f = absl::StrCat(base, ".rlimits[", i, "]");
      const json& e = (*rl)[i];
      if (!e.is_object()) return r.Error(f, "must be an object");
      Rlimit l;
      SV_RET(r.Str(e, "type", f + ".type", &l.type));
      l.resource = RlimitByName(l.type);
      if (l.resource < 0) return r.Error(f + ".type", absl::StrCat("unknown rlimit \"", l.type, "\""));
      if (!e.contains("soft") || !e.contains("hard")) return r.Error(f, "needs soft and hard");
      SV_RET(r.Int(e, "soft", f + ".soft", &l.soft));
      SV_RET(r.Int(e, "hard", f + ".hard", &l.hard));
      if (l.soft > l.hard) return r.Error(f + ".soft", "must not exceed hard");
      for (const Rlimit& o : out->rlimits) {
        if (o.resource == l.resource) return r.Error(f + ".type", absl::StrCat("duplicate ", l.type));
      }
      out->rlimits.push_back(l);
    }
  }
  return absl::OkStatus();
}

void AddDefaultHome(const std::string& rootfs, uid_t uid, std::vector<std::string>* env) {
  for (const std::string& e : *env) {
    if (e.rfind("HOME=", 0) == 0) return;
  }
  std::string home = "/";
  std::ifstream in(rootfs + "/etc/passwd");
  std::string line;
  // passwd(5): name:password:UID:GID:GECOS:directory:shell
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    size_t start = 0;
    for (size_t i = 0; i <= line.size(); ++i) {
      if (i == line.size() || line[i] == ':') {
        f.push_back(line.substr(start, i - start));
        start = i + 1;
      }
    }
    if (f.size() >= 6 && f[2] == std::to_string(uid) && !f[5].empty()) {
      home = f[5];
      break;
    }
  }
  env->push_back("HOME=" + home);
}

absl::StatusOr<Process> LoadProcess(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Bad(path, "(document)", "is not a JSON object");
  Reader r(path);
  Process p;
  try {
    SV_RET(ParseProcess(r, j, "process", &p));
  } catch (const json::exception& e) {
    return Bad(path, "(document)", e.what());
  }
  return p;
}

}  // namespace seedvisor::oci
