#include "seedd/config.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace seedvisor::seedd {

std::vector<std::string> Config::Args() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : values) out.push_back(absl::StrCat("--", k, "=", v));
  return out;
}

std::string Config::Where(const std::string& name, const std::vector<std::string>& cmdline,
                          const std::string& value) const {
  if (values.contains(name) && !SetsFlag(cmdline, name)) {
    return absl::StrCat(path, ": key \"", name, "\" (", value, ")");
  }
  return absl::StrCat("--", name, "=", value);
}

bool SetsFlag(const std::vector<std::string>& args, const std::string& name) {
  for (const std::string& a : args) {
    if (a == "--") return false;
    for (const char* dashes : {"--", "-"}) {
      std::string f = absl::StrCat(dashes, name);
      if (a == f || absl::StartsWith(a, f + "=")) return true;
    }
  }
  return false;
}

std::string ConfigPath(const std::vector<std::string>& args) {
  std::string path;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    for (const std::string f : {"--config", "-config"}) {
      if (a == f && i + 1 < args.size()) path = args[i + 1];
      if (absl::StartsWith(a, f + "=")) path = a.substr(f.size() + 1);
    }
  }
  return path;
}

absl::StatusOr<Config> ReadConfig(const std::string& path, const std::set<std::string>& known) {
  Config c{.path = path, .values = {}};
  if (path.empty()) return c;
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("--config=", path, ": ", strerror(errno)));
  std::string text((std::istreambuf_iterator<char>(in)), {});
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false, /*ignore_comments=*/true);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": must be a JSON object of flag name -> value"));
  }
  for (const auto& [key, v] : j.items()) {
    if (key == "config") {
      return absl::InvalidArgumentError(absl::StrCat(path, ": key \"config\": a config file cannot name another"));
    }
    if (!known.contains(key)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": key \"", key, "\": not a seedd flag (keys: ", absl::StrJoin(known, ", "), ")"));
    }
    if (v.is_string()) {
      c.values[key] = v.get<std::string>();
    } else if (v.is_boolean()) {
      c.values[key] = v.get<bool>() ? "true" : "false";
    } else if (v.is_number_integer()) {
      c.values[key] = v.dump();
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": key \"", key, "\": must be a string, an integer or a boolean"));
    }
  }
  return c;
}

}  // namespace seedvisor::seedd
