#include "shim/runtime_options.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "shim/proto/runtime_options.pb.h"

namespace seedvisor::shim {
namespace {

constexpr absl::string_view kOptionsType = "runtimeoptions.v1.Options";
constexpr absl::string_view kSection = "seedsc_config";

bool IsFlagName(absl::string_view k) {
  if (k.empty()) return false;
  for (char c : k) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

// The value of `key = VALUE` as the flag's text: a "string" (no escapes), a
// bool, an integer; "" and false for anything else.
bool FlagValue(absl::string_view v, std::string* out) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
    absl::string_view s = v.substr(1, v.size() - 2);
    if (absl::StrContains(s, '"') || absl::StrContains(s, '\\')) return false;
    *out = std::string(s);
    return true;
  }
  if (v == "true" || v == "false") {
    *out = std::string(v);
    return true;
  }
  absl::string_view digits = absl::StripPrefix(v, "-");
  if (digits.empty()) return false;
  for (char c : digits) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  *out = std::string(v);
  return true;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseSeedscToml(absl::string_view text,
                                                        absl::string_view path) {
  std::vector<std::string> flags;
  std::string section;
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++n;
    auto where = [&] { return absl::StrCat(path, ":", n, ": "); };
    // A '#' starts a comment unless it is inside a "string".
    bool in_string = false;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '"') in_string = !in_string;
      if (line[i] == '#' && !in_string) {
        line = line.substr(0, i);
        break;
      }
    }
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    if (line.front() == '[') {
      if (line.back() != ']' || line.size() < 3) {
        return absl::InvalidArgumentError(absl::StrCat(where(), "a table header is [name]"));
      }
      section = std::string(absl::StripAsciiWhitespace(line.substr(1, line.size() - 2)));
      if (section != kSection) {
        return absl::InvalidArgumentError(absl::StrCat(where(), "unknown table [", section,
                                                       "] (seedsc's flags go in [", kSection, "])"));
      }
      continue;
    }
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "expected key = value"));
    }
    absl::string_view key = absl::StripAsciiWhitespace(line.substr(0, eq));
    absl::string_view raw = absl::StripAsciiWhitespace(line.substr(eq + 1));
    if (section.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "key ", key, " outside [", kSection, "]"));
    }
    if (!IsFlagName(key)) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "\"", key, "\" is not a flag name"));
    }
    std::string value;
    if (!FlagValue(raw, &value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where(), key, ": the value must be a \"string\", true, false or an integer, not ", raw));
    }
    flags.push_back(absl::StrCat("--", key, "=", value));
  }
  return flags;
}

absl::StatusOr<std::vector<std::string>> FlagsFromRuntimeOptions(
    const google::protobuf::Any& options) {
  if (options.type_url().empty() && options.value().empty()) return std::vector<std::string>{};
  absl::string_view type = options.type_url();
  if (size_t slash = type.rfind('/'); slash != absl::string_view::npos) type = type.substr(slash + 1);
  if (type != kOptionsType) {
    return absl::InvalidArgumentError(absl::StrCat("runtime options: type ", options.type_url(),
                                                   " (seedsc takes ", kOptionsType, ")"));
  }
  runtimeoptions::v1::Options o;
  if (!o.ParseFromString(options.value())) {
    return absl::InvalidArgumentError("runtime options: not a valid runtimeoptions.v1.Options");
  }
  if (o.config_path().empty()) return std::vector<std::string>{};
  std::ifstream in(o.config_path());
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("runtime options: ConfigPath ", o.config_path(), ": cannot be read"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseSeedscToml(ss.str(), o.config_path());
}

}  // namespace seedvisor::shim
