#include "runsc/flags.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace seedvisor::runsc {

void FlagSet::String(const std::string& name, std::string* value, std::string help) {
  flags_[name] = Flag{false,
                      [value](const std::string& v) {
                        *value = v;
                        return absl::OkStatus();
                      },
                      std::move(help), *value};
}

void FlagSet::Bool(const std::string& name, bool* value, std::string help) {
  flags_[name] = Flag{true,
                      [name, value](const std::string& v) {
                        // Go's strconv.ParseBool, as runsc's flags take them.
                        if (v == "true" || v == "1" || v == "t" || v == "T" || v == "TRUE" ||
                            v == "True") {
                          *value = true;
                        } else if (v == "false" || v == "0" || v == "f" || v == "F" ||
                                   v == "FALSE" || v == "False") {
                          *value = false;
                        } else {
                          return absl::InvalidArgumentError(absl::StrCat(
                              "invalid value \"", v, "\" for flag --", name, ": want true or false"));
                        }
                        return absl::OkStatus();
                      },
                      std::move(help), *value ? "true" : "false"};
}

void FlagSet::Choice(const std::string& name, std::string* value, std::vector<std::string> choices,
                     std::string help) {
  std::string all = absl::StrJoin(choices, "|");
  flags_[name] = Flag{false,
                      [name, value, choices, all](const std::string& v) {
                        for (const auto& c : choices) {
                          if (c == v) {
                            *value = v;
                            return absl::OkStatus();
                          }
                        }
                        return absl::InvalidArgumentError(absl::StrCat(
                            "invalid value \"", v, "\" for flag --", name, ": want one of ", all));
                      },
                      absl::StrCat(help, " (", all, ")"), *value};
}

void FlagSet::Alias(const std::string& short_name, const std::string& name) {
  aliases_[short_name] = name;
}

absl::StatusOr<std::vector<std::string>> FlagSet::Parse(const std::vector<std::string>& args) {
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-') break;
    std::string body = a.substr(a[1] == '-' ? 2 : 1);
    std::string name = body, value;
    bool has_value = false;
    if (size_t eq = body.find('='); eq != std::string::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    if (auto al = aliases_.find(name); al != aliases_.end()) name = al->second;
    auto it = flags_.find(name);
    if (it == flags_.end() && (name == "h" || name == "help") && !has_value) {
      help_requested_ = true;
      continue;
    }
    if (it == flags_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(command_.empty() ? "" : command_ + ": ", "unknown flag ", a,
                       " (see \"seedsc help", command_.empty() ? "" : " " + command_, "\")"));
    }
    if (!has_value) {
      if (it->second.is_bool) {
        value = "true";
      } else {
        if (i + 1 >= args.size()) {
          return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
        }
        value = args[++i];
      }
    }
    if (absl::Status s = it->second.set(value); !s.ok()) return s;
  }
  return std::vector<std::string>(args.begin() + static_cast<long>(i), args.end());
}

std::string FlagSet::Usage() const {
  std::string out;
  for (const auto& [name, f] : flags_) {
    out += "  ";
    for (const auto& [short_name, long_name] : aliases_) {
      if (long_name == name) absl::StrAppend(&out, "-", short_name, ", ");
    }
    absl::StrAppend(&out, "--", name, f.is_bool ? "" : "=VALUE", "\n        ", f.help);
    if (!f.default_value.empty()) absl::StrAppend(&out, " (default: ", f.default_value, ")");
    out += "\n";
  }
  return out;
}

}  // namespace seedvisor::runsc
