#include "seedd/functions.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"

namespace seedvisor::seedd {

absl::Status ValidateFunctionName(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError("function name must be 1 to 64 characters");
  }
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '-') {
      return absl::InvalidArgumentError(
          absl::StrCat("function name \"", name, "\": only letters, digits, '_' and '-' are allowed"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Function> ParseDeploy(const std::string& name, const std::string& body) {
  if (absl::Status s = ValidateFunctionName(name); !s.ok()) return s;
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return absl::InvalidArgumentError("deploy body is not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("deploy body must be a JSON object");
  Function f;
  f.name = name;
  for (const auto& [key, value] : j.items()) {
    if (key != "runtime" && key != "handler" && key != "files" && key != "timeout_ms") {
      return absl::InvalidArgumentError(absl::StrCat("deploy body: unknown field \"", key, "\""));
    }
  }
  if (!j.contains("runtime") || !j["runtime"].is_string()) {
    return absl::InvalidArgumentError("runtime: missing (a string: \"python\" or \"node\")");
  }
  f.runtime = j["runtime"].get<std::string>();
  if (f.runtime != "python" && f.runtime != "node") {
    return absl::InvalidArgumentError(absl::StrCat(
        "runtime: \"", f.runtime, "\" is not supported (supported: \"python\", \"node\")"));
  }
  if (!j.contains("handler") || !j["handler"].is_string()) {
    return absl::InvalidArgumentError("handler: missing (a string \"module.function\")");
  }
  f.handler = j["handler"].get<std::string>();
  size_t dot = f.handler.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == f.handler.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("handler: \"", f.handler, "\" is not \"module.function\""));
  }
  if (!j.contains("files") || !j["files"].is_object() || j["files"].empty()) {
    return absl::InvalidArgumentError("files: missing (an object of path -> source text)");
  }
  for (const auto& [path, src] : j["files"].items()) {
    if (!src.is_string()) return absl::InvalidArgumentError(absl::StrCat("files.", path, ": not a string"));
    if (path.empty() || path[0] == '/' || absl::StrContains(path, "..")) {
      return absl::InvalidArgumentError(absl::StrCat("files: \"", path, "\" is not a relative path"));
    }
    f.files[path] = src.get<std::string>();
  }
  std::string module = f.handler.substr(0, dot);
  if (f.runtime == "python") {
    std::string want = absl::StrReplaceAll(module, {{".", "/"}});
    if (!f.files.contains(want + ".py") && !f.files.contains(want + "/__init__.py")) {
      return absl::InvalidArgumentError(
          absl::StrCat("files: no ", want, ".py for handler \"", f.handler, "\""));
    }
  } else if (!f.files.contains(module + ".js") && !f.files.contains(module + "/index.js")) {
    // node: "lib/app.handler" is require('./lib/app').handler
    return absl::InvalidArgumentError(
        absl::StrCat("files: no ", module, ".js for handler \"", f.handler, "\""));
  }
  if (j.contains("timeout_ms")) {
    if (!j["timeout_ms"].is_number_unsigned() || j["timeout_ms"].get<uint64_t>() == 0 ||
        j["timeout_ms"].get<uint64_t>() > 3600000) {
      return absl::InvalidArgumentError("timeout_ms: must be an integer from 1 to 3600000");
    }
    f.timeout = absl::Milliseconds(j["timeout_ms"].get<uint64_t>());
  }
  return f;
}

std::string DeployJson(const Function& f) {
  nlohmann::json j{{"runtime", f.runtime}, {"handler", f.handler}, {"files", f.files}};
  if (f.timeout > absl::ZeroDuration()) j["timeout_ms"] = absl::ToInt64Milliseconds(f.timeout);
  return j.dump();
}

absl::StatusOr<int> Functions::Load() {
  if (dir_.empty()) return 0;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return absl::InternalError(absl::StrCat("making ", dir_, ": ", ec.message()));
  std::map<std::string, Function> loaded;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    std::string file = e.path().filename().string();
    if (!absl::EndsWith(file, ".json")) continue;  // a .tmp left by a crash mid-save
    std::string name = file.substr(0, file.size() - 5);
    std::ifstream in(e.path());
    std::string text((std::istreambuf_iterator<char>(in)), {});
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("deploy") || !j["deploy"].is_object() ||
        !j.contains("version") || !j["version"].is_number_unsigned()) {
      return absl::InvalidArgumentError(
          absl::StrCat(e.path().string(), ": not a saved function ({\"version\": N, \"deploy\": {...}})"));
    }
    absl::StatusOr<Function> f = ParseDeploy(name, j["deploy"].dump());
    if (!f.ok()) return absl::InvalidArgumentError(absl::StrCat(e.path().string(), ": ", f.status().message()));
    f->version = j["version"].get<uint64_t>();
    loaded[name] = std::move(*f);
  }
  if (ec) return absl::InternalError(absl::StrCat("reading ", dir_, ": ", ec.message()));
  absl::MutexLock l(&mu_);
  for (auto& [name, f] : loaded) {
    next_version_ = std::max(next_version_, f.version + 1);
    calls_[name] = 0;
    by_name_[name] = std::make_shared<const Function>(std::move(f));
  }
  return static_cast<int>(loaded.size());
}

absl::StatusOr<std::shared_ptr<const Function>> Functions::Put(Function f) {
  absl::MutexLock l(&mu_);
  f.version = next_version_++;
  if (!dir_.empty()) {
    // Written whole, then renamed: a crash leaves the old version or the new.
    std::string path = absl::StrCat(dir_, "/", f.name, ".json");
    std::string tmp = path + ".tmp";
    nlohmann::json j{{"version", f.version}, {"deploy", nlohmann::json::parse(DeployJson(f))}};
    std::ofstream out(tmp, std::ios::trunc);
    if (!out || !(out << j.dump() << "\n") || !out.flush()) {
      return absl::InternalError(absl::StrCat("saving the function to ", tmp, ": ", strerror(errno)));
    }
    out.close();
    if (rename(tmp.c_str(), path.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("saving the function to ", path, ": ", strerror(errno)));
    }
  }
  auto p = std::make_shared<const Function>(std::move(f));
  by_name_[p->name] = p;
  calls_[p->name] = 0;
  recent_.erase(p->name);
  return p;
}

std::shared_ptr<const Function> Functions::Get(const std::string& name) const {
  absl::MutexLock l(&mu_);
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

uint64_t Functions::CountCall(const Function& f, absl::Duration now) {
  absl::MutexLock l(&mu_);
  auto it = by_name_.find(f.name);
  if (it == by_name_.end() || it->second->version != f.version) return 0;
  std::deque<absl::Duration>& recent = recent_[f.name];
  recent.push_back(now);
  if (recent.size() > kRecentCalls) recent.pop_front();
  return ++calls_[f.name];
}

uint64_t Functions::RecentCalls(const Function& f, absl::Duration window, absl::Duration now) const {
  absl::MutexLock l(&mu_);
  auto it = by_name_.find(f.name);
  if (it == by_name_.end() || it->second->version != f.version) return 0;
  auto r = recent_.find(f.name);
  if (r == recent_.end()) return 0;
  uint64_t n = 0;
  for (absl::Duration t : r->second) n += (now - t <= window) ? 1 : 0;
  return n;
}

uint64_t Functions::Calls(const Function& f) const {
  absl::MutexLock l(&mu_);
  auto it = by_name_.find(f.name);
  if (it == by_name_.end() || it->second->version != f.version) return 0;
  return calls_.at(f.name);
}

std::vector<std::shared_ptr<const Function>> Functions::All() const {
  absl::MutexLock l(&mu_);
  std::vector<std::shared_ptr<const Function>> out;
  for (const auto& [n, f] : by_name_) out.push_back(f);
  return out;
}

}  // namespace seedvisor::seedd
