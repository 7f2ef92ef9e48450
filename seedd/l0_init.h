// The level-0 seed's init: a sandbox that holds no runtime yet. seedd boots
// it as `seedd l0-init` (its own binary, over the host root), and every fork
// of it starts a language runtime: the fork's first frame on stdin names the
// program, and the init execs it with the rest of stdin (the request) left
// unread for the runtime.
//
//   frame := 4-byte big-endian length, payload
//   payload := argv[0] NUL argv[1] NUL ... NUL NUL env[0] NUL env[1] NUL ...
//
// The init answers one ready frame ({"ready": true, "level": 0}) when it
// starts; a failed exec answers {"error": "..."} and exits 127.
#ifndef SEEDVISOR_SEEDD_L0_INIT_H_
#define SEEDVISOR_SEEDD_L0_INIT_H_

#include <string>
#include <vector>

namespace seedvisor::seedd {

// The exec frame for `args` (args[0] absolute) and `env` ("K=V").
std::string L0ExecFrame(const std::vector<std::string>& args, const std::vector<std::string>& env);

// `seedd l0-init`: never returns on success (execs); the exit code otherwise.
int L0InitMain();

}  // namespace seedvisor::seedd

#endif  // SEEDVISOR_SEEDD_L0_INIT_H_
