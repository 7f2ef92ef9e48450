#include "sentry/kernel/keys/key_proc.h"

#include <atomic>
#include <climits>
#include <mutex>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "sentry/kernel/keys/key_registry.h"
#include "sentry/kernel/keys/process_keys.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {

namespace {

// proc_keys_show()'s timeout column.
std::string Timeout(const Key& k, int64_t now) {
  if (k.expiry == 0) return "perm";
  if (now >= k.expiry) return "expd";
  const int64_t t = k.expiry - now;
  if (t < 60) return absl::StrCat(t, "s");
  if (t < 60 * 60) return absl::StrCat(t / 60, "m");
  if (t < 60 * 60 * 24) return absl::StrCat(t / (60 * 60), "h");
  if (t < 60 * 60 * 24 * 7) return absl::StrCat(t / (60 * 60 * 24), "d");
  return absl::StrCat(t / (60 * 60 * 24 * 7), "w");
}

}  // namespace

std::string ProcKeysText(KeyRegistry& r, Task* reader) {
  std::lock_guard l(r.mu());
  std::optional<KeyContext> ctx;
  if (reader != nullptr) ctx.emplace(*reader, r);
  const int64_t now = KeyNow();
  std::string out;
  r.ForEach([&](Key& k) {
    if (ctx) {
      const bool possessed = (k.perm & KeyPos(kKeyNeedView)) && ctx->Possessed(k);
      if (!k.Permits(ctx->creds(), possessed, kKeyNeedView).ok()) return;
    }
    absl::StrAppendFormat(&out, "%08x %c%c%c%c%c%c%c %5d %4s %08x %5d %5d %-9.9s %s\n",
                          k.serial, k.instantiated ? 'I' : '-', k.revoked ? 'R' : '-', '-',
                          k.in_quota ? 'Q' : '-', '-', k.reject_error != 0 ? 'N' : '-',
                          k.invalidated ? 'i' : '-',
                          static_cast<int>(k.shared_from_this().use_count() - 1),
                          Timeout(k, now), k.perm, KeyIdShown(k.uid()), KeyIdShown(k.gid), k.type->name,
                          k.Describe());
  });
  return out;
}

std::string ProcKeyUsersText(KeyRegistry& r) {
  std::lock_guard l(r.mu());
  return r.KeyUsersText();
}

namespace {

struct Sysctl {
  const char* name;
  std::atomic<int64_t> KeyLimits::*field;
  int64_t min;
};

constexpr Sysctl kSysctls[] = {
    {"gc_delay", &KeyLimits::gc_delay, 0},
    {"maxbytes", &KeyLimits::maxbytes, 1},
    {"maxkeys", &KeyLimits::maxkeys, 1},
    {"persistent_keyring_expiry", &KeyLimits::persistent_keyring_expiry, 0},
    {"root_maxbytes", &KeyLimits::root_maxbytes, 1},
    {"root_maxkeys", &KeyLimits::root_maxkeys, 1},
};

const Sysctl* FindSysctl(const std::string& name) {
  for (const Sysctl& s : kSysctls) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

}  // namespace

const std::vector<std::string>& KeySysctlNames() {
  static const auto* names = [] {
    auto* v = new std::vector<std::string>;
    for (const Sysctl& s : kSysctls) v->push_back(s.name);
    return v;
  }();
  return *names;
}

std::string KeySysctlText(KeyRegistry& r, const std::string& name) {
  const Sysctl* s = FindSysctl(name);
  if (s == nullptr) return "";
  return absl::StrCat((r.limits().*(s->field)).load(), "\n");
}

Status SetKeySysctl(KeyRegistry& r, const std::string& name, std::string_view text) {
  const Sysctl* s = FindSysctl(name);
  if (s == nullptr) return Errno(ENOENT);
  int64_t v;
  // proc_dointvec_minmax(): an int within [min, INT_MAX].
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size())),
                        &v) ||
      v < s->min || v > INT_MAX) {
    return Errno(EINVAL);
  }
  (r.limits().*(s->field)).store(v);
  return {};
}

}  // namespace seedvisor::sentry
