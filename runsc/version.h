#ifndef SEEDVISOR_RUNSC_VERSION_H_
#define SEEDVISOR_RUNSC_VERSION_H_

namespace seedvisor::runsc {

inline constexpr const char* kVersion = "0.1.0";

}  // namespace seedvisor::runsc

#endif  // SEEDVISOR_RUNSC_VERSION_H_
