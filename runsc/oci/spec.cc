#include "runsc/oci/spec.h"

#include <linux/capability.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runsc/oci/spec_internal.h"

namespace seedvisor::oci {
namespace {


// The mount types the sandbox implements (sentry/control/mounts.cc). proc,
// devpts on /dev/pts and cgroup/cgroup2 are accepted as runc's and
// containerd's default specs list them; the sandbox has its own /proc and
// devpts, and no cgroup filesystem (the mount point stays as the rootfs has
// it). A bind mount may carry any type ("none" is common): "bind" or "rbind"
// in options makes it one.
constexpr const char* kMountTypes[] = {"bind",   "tmpfs",  "proc",   "sysfs",
                                       "devpts", "mqueue", "cgroup", "cgroup2"};

bool SupportedMountType(const std::string& t) {
  for (const char* k : kMountTypes) {
    if (t == k) return true;
  }
  return false;
}

std::string SupportedMountTypes() {
  std::string out;
  for (const char* k : kMountTypes) absl::StrAppend(&out, out.empty() ? "" : ", ", k);
  return out;
}

// `bundle` as an absolute, lexically normal path ("" stays "").
std::string AbsoluteBundle(const std::string& bundle) {
  if (bundle.empty()) return bundle;
  std::filesystem::path b(bundle);
  if (b.is_relative()) {
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) != nullptr) b = std::filesystem::path(cwd) / b;
  }
  std::string n = b.lexically_normal().string();
  while (n.size() > 1 && n.back() == '/') n.pop_back();
  return n;
}

// A relative path of config.json, resolved against the bundle as runc does;
// "" if it resolves outside the bundle directory. Lexical: ".." components
// count, symlinks the bundle holds are its author's and are followed later.
std::string InsideBundle(const std::string& abs_bundle, const std::string& rel,
                         std::string* resolved) {
  std::string r = (std::filesystem::path(abs_bundle) / rel).lexically_normal().string();
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  *resolved = r;
  if (r == abs_bundle) return r;
  if (abs_bundle == "/" || r.rfind(abs_bundle + "/", 0) == 0) return r;
  return "";
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

absl::Status ParseHooks(Reader& r, const json& h, Hooks* out) {
  struct {
    const char* key;
    std::vector<Hook>* v;
  } kinds[] = {{"prestart", &out->prestart},           {"createRuntime", &out->create_runtime},
               {"createContainer", &out->create_container},
               {"startContainer", &out->start_container}, {"poststart", &out->poststart},
               {"poststop", &out->poststop}};
  for (auto& k : kinds) {
    std::string f = absl::StrCat("hooks.", k.key);
    SV_GET(arr, r.Array(h, k.key, f));
    if (arr == nullptr) continue;
    for (size_t i = 0; i < arr->size(); ++i) {
      std::string hf = absl::StrCat(f, "[", i, "]");
      const json& e = (*arr)[i];
      if (!e.is_object()) return r.Error(hf, "must be an object");
      Hook hk;
      SV_RET(r.Str(e, "path", hf + ".path", &hk.path));
      if (hk.path.empty() || hk.path[0] != '/') return r.Error(hf + ".path", "must be an absolute path");
      SV_RET(r.Strings(e, "args", hf + ".args", &hk.args));
      SV_RET(r.Strings(e, "env", hf + ".env", &hk.env));
      std::optional<int> t;
      SV_RET(r.OptInt(e, "timeout", hf + ".timeout", &t));
      if (t && *t <= 0) return r.Error(hf + ".timeout", "must be positive");
      hk.timeout_s = t;
      k.v->push_back(hk);
    }
  }
  return absl::OkStatus();
}

// An OCI LinuxResources object (config.json's linux.resources, or the
// resources of an update); `base` prefixes the field names in errors.
// Fields seedsc does not apply (devices, blockIO, hugepageLimits, ...) are
// accepted and ignored.
absl::Status ParseResources(Reader& r, const json& res, const std::string& base, Resources* out) {
  SV_GET(mem, r.Object(res, "memory", base + "memory"));
  if (mem != nullptr) {
    SV_RET(r.OptInt(*mem, "limit", base + "memory.limit", &out->memory_limit));
    SV_RET(r.OptInt(*mem, "reservation", base + "memory.reservation", &out->memory_reservation));
    SV_RET(r.OptInt(*mem, "swap", base + "memory.swap", &out->memory_swap));
    if (out->memory_limit && *out->memory_limit != -1 && *out->memory_limit < 4096) {
      return r.Error(base + "memory.limit", "must be -1 or at least 4096 bytes");
    }
  }
  SV_GET(cpu, r.Object(res, "cpu", base + "cpu"));
  if (cpu != nullptr) {
    SV_RET(r.OptInt(*cpu, "shares", base + "cpu.shares", &out->cpu_shares));
    SV_RET(r.OptInt(*cpu, "quota", base + "cpu.quota", &out->cpu_quota));
    SV_RET(r.OptInt(*cpu, "period", base + "cpu.period", &out->cpu_period));
    std::string cpus;
    SV_RET(r.Str(*cpu, "cpus", base + "cpu.cpus", &cpus));
    if (!cpus.empty()) out->cpuset_cpus = cpus;
    if (out->cpu_period && (*out->cpu_period < 1000 || *out->cpu_period > 1000000)) {
      return r.Error(base + "cpu.period", "must be between 1000 and 1000000 (µs)");
    }
  }
  SV_GET(pids, r.Object(res, "pids", base + "pids"));
  if (pids != nullptr) SV_RET(r.OptInt(*pids, "limit", base + "pids.limit", &out->pids_limit));
  return absl::OkStatus();
}

absl::Status ParseLinux(Reader& r, const json& l, Spec* out) {
  SV_GET(ns, r.Array(l, "namespaces", "linux.namespaces"));
  if (ns != nullptr) {
    static const char* kTypes[] = {"pid", "network", "mount", "ipc", "uts", "user", "cgroup"};
    for (size_t i = 0; i < ns->size(); ++i) {
      std::string f = absl::StrCat("linux.namespaces[", i, "]");
      const json& e = (*ns)[i];
      if (!e.is_object()) return r.Error(f, "must be an object");
      Namespace n;
      SV_RET(r.Str(e, "type", f + ".type", &n.type));
      SV_RET(r.Str(e, "path", f + ".path", &n.path));
      bool known = false;
      for (const char* t : kTypes) known |= n.type == t;
      if (!known) return r.Error(f + ".type", absl::StrCat("unknown namespace type \"", n.type, "\""));
      if (out->HasNamespace(n.type)) return r.Error(f + ".type", absl::StrCat("duplicate ", n.type));
      out->namespaces.push_back(n);
    }
  }
  SV_RET(r.Str(l, "cgroupsPath", "linux.cgroupsPath", &out->cgroups_path));
  SV_GET(res, r.Object(l, "resources", "linux.resources"));
  if (res != nullptr) SV_RET(ParseResources(r, *res, "linux.resources.", &out->resources));
  SV_RET(r.Strings(l, "maskedPaths", "linux.maskedPaths", &out->masked_paths));
  SV_RET(r.Strings(l, "readonlyPaths", "linux.readonlyPaths", &out->readonly_paths));
  for (size_t i = 0; i < out->masked_paths.size(); ++i) {
    if (out->masked_paths[i].empty() || out->masked_paths[i][0] != '/') {
      return r.Error(absl::StrCat("linux.maskedPaths[", i, "]"), "must be an absolute path");
    }
  }
  for (size_t i = 0; i < out->readonly_paths.size(); ++i) {
    if (out->readonly_paths[i].empty() || out->readonly_paths[i][0] != '/') {
      return r.Error(absl::StrCat("linux.readonlyPaths[", i, "]"), "must be an absolute path");
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool Mount::IsBind() const {
  if (type == "bind") return true;
  for (const std::string& o : options) {
    if (o == "bind" || o == "rbind") return true;
  }
  return false;
}

bool Spec::HasNamespace(const std::string& type) const {
  for (const Namespace& n : namespaces) {
    if (n.type == type) return true;
  }
  return false;
}

absl::StatusOr<Spec> ParseSpec(const std::string& text, const std::string& bundle) {
  Reader r("config.json");
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("config.json", "(document)", "is not valid JSON");
  if (!j.is_object()) return Bad("config.json", "(document)", "must be a JSON object");
  Spec s;
  try {
    SV_RET(r.Str(j, "ociVersion", "ociVersion", &s.oci_version));
    if (s.oci_version.empty()) return r.Error("ociVersion", "must be set");
    if (s.oci_version[0] != '1') {
      return r.Error("ociVersion", absl::StrCat("unsupported version \"", s.oci_version, "\""));
    }
    SV_GET(proc, r.Object(j, "process", "process"));
    if (proc == nullptr) return r.Error("process", "must be set");
    SV_RET(ParseProcess(r, *proc, "process", &s.process));
    SV_GET(root, r.Object(j, "root", "root"));
    if (root == nullptr) return r.Error("root", "must be set");
    SV_RET(r.Str(*root, "path", "root.path", &s.root.path));
    SV_RET(r.Bool(*root, "readonly", "root.readonly", &s.root.readonly));
    if (s.root.path.empty()) return r.Error("root.path", "must be set");
    // A relative root.path is the bundle's (as in runc) and must stay in it:
    // "../../.." reaching the host's / is refused. An absolute path is what
    // the user wrote explicitly and is taken as written. runc accepts both;
    // this is a deliberate difference (test/oci/oci_test.sh).
    const std::string abs_bundle = AbsoluteBundle(bundle);
    if (s.root.path[0] != '/' && !bundle.empty()) {
      std::string resolved;
      if (InsideBundle(abs_bundle, s.root.path, &resolved).empty()) {
        return r.Error("root.path", absl::StrCat("\"", s.root.path, "\" resolves outside the bundle (",
                                                 resolved, ")"));
      }
      s.root.path = absl::StrCat(bundle, "/", s.root.path);
    }
    if (!bundle.empty()) {
      struct stat st;
      if (stat(s.root.path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        return r.Error("root.path", absl::StrCat("\"", s.root.path, "\" is not a directory"));
      }
    }
    SV_RET(r.Str(j, "hostname", "hostname", &s.hostname));
    SV_GET(mounts, r.Array(j, "mounts", "mounts"));
    if (mounts != nullptr) {
      for (size_t i = 0; i < mounts->size(); ++i) {
        std::string f = absl::StrCat("mounts[", i, "]");
        const json& e = (*mounts)[i];
        if (!e.is_object()) return r.Error(f, "must be an object");
        Mount m;
        SV_RET(r.Str(e, "destination", f + ".destination", &m.destination));
        SV_RET(r.Str(e, "type", f + ".type", &m.type));
        SV_RET(r.Str(e, "source", f + ".source", &m.source));
        SV_RET(r.Strings(e, "options", f + ".options", &m.options));
        if (m.destination.empty() || m.destination[0] != '/') {
          return r.Error(f + ".destination", "must be an absolute path");
        }
        if (m.type.empty() && !m.IsBind()) return r.Error(f + ".type", "must be set");
        if (!m.IsBind() && !SupportedMountType(m.type)) {
          return r.Error(f + ".type", absl::StrCat("\"", m.type, "\" is not supported (supported: ",
                                                   SupportedMountTypes(), ")"));
        }
        if (m.IsBind() && m.source.empty()) return r.Error(f + ".source", "a bind mount needs a source");
        // A relative bind source is the bundle's, as in runc, and must stay
        // in it (runc would follow "../../etc" to the host's /etc: a
        // deliberate difference). Absolute sources are taken as written.
        if (m.IsBind() && m.source[0] != '/' && !bundle.empty()) {
          std::string resolved;
          if (InsideBundle(abs_bundle, m.source, &resolved).empty()) {
            return r.Error(f + ".source", absl::StrCat("\"", m.source,
                                                       "\" resolves outside the bundle (", resolved,
                                                       ")"));
          }
          m.source = resolved;
        }
        s.mounts.push_back(m);
      }
    }
    SV_GET(hooks, r.Object(j, "hooks", "hooks"));
    if (hooks != nullptr) SV_RET(ParseHooks(r, *hooks, &s.hooks));
    SV_GET(ann, r.Object(j, "annotations", "annotations"));
    if (ann != nullptr) {
      for (auto it = ann->begin(); it != ann->end(); ++it) {
        if (!it->is_string()) return r.Error("annotations." + it.key(), "must be a string");
        s.annotations[it.key()] = it->get<std::string>();
      }
    }
    SV_GET(linux, r.Object(j, "linux", "linux"));
    if (linux != nullptr) SV_RET(ParseLinux(r, *linux, &s));
    if (!s.hostname.empty() && !s.namespaces.empty() && !s.HasNamespace("uts")) {
      return r.Error("hostname", "needs a uts namespace in linux.namespaces");
    }
  } catch (const json::exception& e) {
    return Bad("config.json", "(document)", e.what());
  }
  return s;
}

absl::StatusOr<Spec> LoadBundle(const std::string& bundle) {
  auto text = ReadFile(bundle + "/config.json");
  if (!text.ok()) {
    return absl::NotFoundError(absl::StrCat("cannot read config.json in bundle ", bundle, ": ",
                                            text.status().message()));
  }
  return ParseSpec(*text, bundle);
}


absl::StatusOr<Resources> ParseResourcesJson(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad(what, "(document)", "is not a JSON object");
  Reader r(what);
  Resources out;
  try {
    SV_RET(ParseResources(r, j, "", &out));
  } catch (const json::exception& e) {
    return Bad(what, "(document)", e.what());
  }
  return out;
}

}  // namespace seedvisor::oci
