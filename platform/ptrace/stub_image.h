// The stub executable, embedded in the sentry so that nothing is looked up on
// the host's filesystem at run time (generated from stub_amd64.S).
#ifndef SEEDVISOR_PLATFORM_PTRACE_STUB_IMAGE_H_
#define SEEDVISOR_PLATFORM_PTRACE_STUB_IMAGE_H_

#include <cstddef>
#include <cstdint>

namespace seedvisor::platform::ptrace {

extern const uint8_t kStubImage[];
extern const size_t kStubImageSize;

}  // namespace seedvisor::platform::ptrace

#endif  // SEEDVISOR_PLATFORM_PTRACE_STUB_IMAGE_H_
