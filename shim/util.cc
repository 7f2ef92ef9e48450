#include "shim/util.h"

#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <time.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace seedvisor::shim {
namespace {

struct FlagOpt {
  const char* name;
  bool clear;
  unsigned long flag;
};

// mount(8)'s flag options (see mount(8) FILESYSTEM-INDEPENDENT MOUNT OPTIONS).
constexpr FlagOpt kFlags[] = {
    {"ro", false, MS_RDONLY},        {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},    {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},      {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},    {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS}, {"async", true, MS_SYNCHRONOUS},
    {"noatime", false, MS_NOATIME},  {"atime", true, MS_NOATIME},
    {"relatime", false, MS_RELATIME}, {"norelatime", true, MS_RELATIME},
    {"bind", false, MS_BIND},        {"rbind", false, MS_BIND | MS_REC},
    {"remount", false, MS_REMOUNT},  {"defaults", false, 0},
};

}  // namespace

absl::Status MountRootfs(const google::protobuf::RepeatedPtrField<containerd::types::Mount>& ms,
                         const std::string& target) {
  for (const containerd::types::Mount& m : ms) {
    unsigned long flags = 0;
    std::vector<std::string> data;
    for (const std::string& o : m.options()) {
      bool known = false;
      for (const FlagOpt& f : kFlags) {
        if (o == f.name) {
          flags = f.clear ? (flags & ~f.flag) : (flags | f.flag);
          known = true;
          break;
        }
      }
      if (!known) data.push_back(o);
    }
    std::string type = m.type();
    if (type == "bind" || type == "rbind") flags |= MS_BIND | (type == "rbind" ? MS_REC : 0);
    std::string d = absl::StrJoin(data, ",");
    const bool bind = (flags & MS_BIND) != 0;
    // mount(2): MS_RDONLY is ignored together with MS_BIND; a read-only bind
    // mount takes a second, remounting call.
    if (mount(m.source().c_str(), target.c_str(), type.c_str(), bind ? flags & ~MS_RDONLY : flags,
              d.empty() ? nullptr : d.c_str()) < 0) {
      int e = errno;
      UnmountAll(target);
      return absl::InternalError(absl::StrCat("mount ", type, " ", m.source(), " on ", target,
                                              " (", d, "): ", strerror(e)));
    }
    if (bind && (flags & MS_RDONLY) != 0 &&
        mount("", target.c_str(), "", MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) < 0) {
      int e = errno;
      UnmountAll(target);
      return absl::InternalError(absl::StrCat("remount ", target, " read-only: ", strerror(e)));
    }
  }
  return absl::OkStatus();
}

void UnmountAll(const std::string& target) {
  for (int i = 0; i < 16 && umount2(target.c_str(), MNT_DETACH) == 0; ++i) {
  }
}

absl::StatusOr<seedvisor::control::v1::ExecRequest> ExecFromOciProcess(const std::string& json) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("exec spec: not a JSON object");
  }
  seedvisor::control::v1::ExecRequest e;
  auto strings = [&](const char* key, google::protobuf::RepeatedPtrField<std::string>* out)
      -> absl::Status {
    if (!j.contains(key) || j[key].is_null()) return absl::OkStatus();
    if (!j[key].is_array()) return absl::InvalidArgumentError(absl::StrCat("exec spec: ", key, ": not an array"));
    for (const auto& v : j[key]) {
      if (!v.is_string()) return absl::InvalidArgumentError(absl::StrCat("exec spec: ", key, ": not a string"));
      out->Add(v.get<std::string>());
    }
    return absl::OkStatus();
  };
  if (absl::Status s = strings("args", e.mutable_args()); !s.ok()) return s;
  if (e.args().empty()) return absl::InvalidArgumentError("exec spec: args: must not be empty");
  if (absl::Status s = strings("env", e.mutable_env()); !s.ok()) return s;
  if (j.contains("cwd") && j["cwd"].is_string()) e.set_cwd(j["cwd"].get<std::string>());
  if (j.contains("user") && j["user"].is_object()) {
    const auto& u = j["user"];
    if (u.contains("uid") && u["uid"].is_number_unsigned()) e.mutable_user()->set_uid(u["uid"].get<uint32_t>());
    if (u.contains("gid") && u["gid"].is_number_unsigned()) e.mutable_user()->set_gid(u["gid"].get<uint32_t>());
    if (u.contains("additionalGids") && u["additionalGids"].is_array()) {
      for (const auto& g : u["additionalGids"]) {
        if (g.is_number_unsigned()) e.mutable_user()->add_additional_gids(g.get<uint32_t>());
      }
    }
  }
  if (j.contains("noNewPrivileges") && j["noNewPrivileges"].is_boolean()) {
    e.set_no_new_privileges(j["noNewPrivileges"].get<bool>());
  }
  if (j.contains("capabilities") && j["capabilities"].is_object() &&
      j["capabilities"].contains("effective") && j["capabilities"]["effective"].is_array()) {
    for (const auto& c : j["capabilities"]["effective"]) {
      if (c.is_string()) e.add_capabilities(c.get<std::string>());
    }
  }
  return e;
}

google::protobuf::Timestamp TimestampFromUnixNanos(int64_t ns) {
  google::protobuf::Timestamp t;
  t.set_seconds(ns / 1000000000);
  t.set_nanos(static_cast<int32_t>(ns % 1000000000));
  return t;
}

google::protobuf::Timestamp Now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return TimestampFromUnixNanos(int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec);
}

absl::StatusOr<oci::Resources> ResourcesFromAny(const google::protobuf::Any& any) {
  if (any.type_url() != kLinuxResourcesTypeUrl) {
    return absl::InvalidArgumentError(absl::StrCat("update: resources: type \"", any.type_url(),
                                                   "\" is not ", kLinuxResourcesTypeUrl));
  }
  return oci::ParseResourcesJson(any.value(), "update: resources");
}

std::string CgroupOfController(const std::string& proc_cgroup, const std::string& controller) {
  // Each line is "hierarchy-ID:controller-list:path" (cgroups(7)).
  for (absl::string_view line : absl::StrSplit(proc_cgroup, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (f.size() != 3) continue;
    for (absl::string_view c : absl::StrSplit(f[1], ',')) {
      if (c == controller) return std::string(f[2]);
    }
  }
  return "";
}

}  // namespace seedvisor::shim
