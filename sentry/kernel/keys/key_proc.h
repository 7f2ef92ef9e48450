// The key retention service's files: /proc/keys, /proc/key-users and
// /proc/sys/kernel/keys/* (security/keys/proc.c and sysctl.c).
//
//   root->Add("keys", SynthFile::Text([&k] { return ProcKeysText(KeysOf(k), CurrentTask()); }));
#ifndef SEEDVISOR_SENTRY_KERNEL_KEYS_KEY_PROC_H_
#define SEEDVISOR_SENTRY_KERNEL_KEYS_KEY_PROC_H_

#include <string>
#include <string_view>
#include <vector>

#include "sentry/base/errno.h"

namespace seedvisor::sentry {

class KeyRegistry;
class Task;

// The keys `reader` may view (possessor rights where it possesses them);
// null: every key.
std::string ProcKeysText(KeyRegistry& r, Task* reader);
std::string ProcKeyUsersText(KeyRegistry& r);

// The names under /proc/sys/kernel/keys, and their text and writes (an
// integer in the sysctl's range: EINVAL otherwise).
const std::vector<std::string>& KeySysctlNames();
std::string KeySysctlText(KeyRegistry& r, const std::string& name);
Status SetKeySysctl(KeyRegistry& r, const std::string& name, std::string_view text);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_KEYS_KEY_PROC_H_
