// Reading a whole host file (a /proc or cgroupfs file, a test's output)
// where "cannot be read" and "empty" mean the same to the caller.
//
//   std::string boot_id = ReadFileOrEmpty("/proc/sys/kernel/random/boot_id");
//
// Host files only: guest memory and guest paths go through the Vfs.
#ifndef SEEDVISOR_SENTRY_BASE_READ_FILE_H_
#define SEEDVISOR_SENTRY_BASE_READ_FILE_H_

#include <string>

namespace seedvisor {

// The whole of the host file `path`, read until EOF (a /proc file's size is
// 0, so no size is trusted); what was read before an error, and empty if it
// cannot be opened.
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace seedvisor

#endif  // SEEDVISOR_SENTRY_BASE_READ_FILE_H_
