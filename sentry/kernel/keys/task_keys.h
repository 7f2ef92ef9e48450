// The key retention service's hooks in the task lifecycle (copy_creds()
// and prepare_exec_creds() in Linux) and the registry of a kernel.
//
//   KeysOnClone(parent, *child, flags);  // Task::Clone, under Kernel::mu()
//   KeysOnExec(t);                      // Task::Execve, under Kernel::mu()
//
// Both are cheap for a task that never used keys (most never do).
#ifndef SEEDVISOR_SENTRY_KERNEL_KEYS_TASK_KEYS_H_
#define SEEDVISOR_SENTRY_KERNEL_KEYS_TASK_KEYS_H_

#include <cstdint>

namespace seedvisor::sentry {

class Kernel;
class KeyRegistry;
class Task;

// The key registry of `k`, made on first use. Keyed by the kernel in a
// process-wide table (sentry memory, so a sandbox fork copies it with the
// rest): one sentry runs one kernel; a registry outlives its kernel only in
// tests that make several.
KeyRegistry& KeysOf(Kernel& k);

// clone(2): the child gets the parent's session keyring and request_key
// default; a new thread whose creator has a thread keyring gets one of its
// own (made when first looked at); the process keyring stays with the
// thread group. `flags` are clone's.
void KeysOnClone(Task& parent, Task& child, uint64_t flags);
// execve(2): the thread and process keyrings go, the session keyring stays.
void KeysOnExec(Task& t);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_KERNEL_KEYS_TASK_KEYS_H_
