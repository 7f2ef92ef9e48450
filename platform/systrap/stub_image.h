// The systrap stub executable, embedded in the sentry (from stub_amd64.S).
#ifndef SEEDVISOR_PLATFORM_SYSTRAP_STUB_IMAGE_H_
#define SEEDVISOR_PLATFORM_SYSTRAP_STUB_IMAGE_H_

#include <cstddef>
#include <cstdint>

namespace seedvisor::platform::systrap {

extern const uint8_t kStubImage[];
extern const size_t kStubImageSize;

}  // namespace seedvisor::platform::systrap

#endif  // SEEDVISOR_PLATFORM_SYSTRAP_STUB_IMAGE_H_
