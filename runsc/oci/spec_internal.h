// What spec.cc (config.json as a whole) and spec_process.cc (its process,
// and process.json for exec) share: the field reader whose every error names
// the field. Private to runsc/oci.
#ifndef SEEDVISOR_RUNSC_OCI_SPEC_INTERNAL_H_
#define SEEDVISOR_RUNSC_OCI_SPEC_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "runsc/oci/spec.h"

namespace seedvisor::oci {

using json = nlohmann::json;

inline absl::Status Bad(const std::string& file, const std::string& field,
                        const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": ", field, ": ", what));
}

inline const char* TypeName(const json& j) { return j.type_name(); }

// Reads typed fields of a JSON object, naming the field in every error.
class Reader {
 public:
  Reader(std::string file) : file_(std::move(file)) {}
  absl::Status Error(const std::string& field, const std::string& what) const {
    return Bad(file_, field, what);
  }

  // Each Get* leaves *out unchanged when the key is absent or null.
  absl::Status Str(const json& o, const char* key, const std::string& field, std::string* out) {
    const json* v = Find(o, key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_string()) return Error(field, absl::StrCat("must be a string, not ", TypeName(*v)));
    *out = v->get<std::string>();
    return absl::OkStatus();
  }
  absl::Status Bool(const json& o, const char* key, const std::string& field, bool* out) {
    const json* v = Find(o, key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_boolean()) return Error(field, absl::StrCat("must be a boolean, not ", TypeName(*v)));
    *out = v->get<bool>();
    return absl::OkStatus();
  }
  template <typename T>
  absl::Status Int(const json& o, const char* key, const std::string& field, T* out) {
    const json* v = Find(o, key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_number_integer()) {
      return Error(field, absl::StrCat("must be an integer, not ", TypeName(*v)));
    }
    if constexpr (std::is_unsigned_v<T>) {
      if (v->is_number_unsigned() || v->get<int64_t>() >= 0) {
        *out = static_cast<T>(v->get<uint64_t>());
        return absl::OkStatus();
      }
      return Error(field, "must not be negative");
    } else {
      *out = static_cast<T>(v->get<int64_t>());
      return absl::OkStatus();
    }
  }
  template <typename T>
  absl::Status OptInt(const json& o, const char* key, const std::string& field,
                      std::optional<T>* out) {
    if (Find(o, key) == nullptr) return absl::OkStatus();
    T t{};
    if (auto s = Int(o, key, field, &t); !s.ok()) return s;
    *out = t;
    return absl::OkStatus();
  }
  absl::Status Strings(const json& o, const char* key, const std::string& field,
                       std::vector<std::string>* out) {
    const json* v = Find(o, key);
    if (v == nullptr) return absl::OkStatus();
    if (!v->is_array()) return Error(field, absl::StrCat("must be an array, not ", TypeName(*v)));
    out->clear();
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) {
        return Error(absl::StrCat(field, "[", i, "]"),
                     absl::StrCat("must be a string, not ", TypeName((*v)[i])));
      }
      out->push_back((*v)[i].get<std::string>());
    }
    return absl::OkStatus();
  }
  // An object member that must be an object when present.
  absl::StatusOr<const json*> Object(const json& o, const char* key, const std::string& field) {
    const json* v = Find(o, key);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) return Error(field, absl::StrCat("must be an object, not ", TypeName(*v)));
    return v;
  }
  absl::StatusOr<const json*> Array(const json& o, const char* key, const std::string& field) {
    const json* v = Find(o, key);
    if (v == nullptr) return nullptr;
    if (!v->is_array()) return Error(field, absl::StrCat("must be an array, not ", TypeName(*v)));
    return v;
  }

 private:
  static const json* Find(const json& o, const char* key) {
    auto it = o.find(key);
    if (it == o.end() || it->is_null()) return nullptr;
    return &*it;
  }
  std::string file_;
};

#define SV_RET(expr)                   \
  do {                                 \
    absl::Status _s = (expr);          \
    if (!_s.ok()) return _s;           \
  } while (0)

#define SV_GET(var, expr)               \
  auto var##_or = (expr);               \
  if (!var##_or.ok()) return var##_or.status(); \
  const json* var = *var##_or

// The text of the file at `path`.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// config.json's "process" object `p` (field names start with `base`).
absl::Status ParseProcess(Reader& r, const json& p, const std::string& base, Process* out);

}  // namespace seedvisor::oci

#endif  // SEEDVISOR_RUNSC_OCI_SPEC_INTERNAL_H_
