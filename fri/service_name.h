// The ttrpc service name of FRI (fri.proto), for servers and clients alike:
// methods are "/seedvisor.fri.v1.FRI/<Method>".
#ifndef SEEDVISOR_FRI_SERVICE_NAME_H_
#define SEEDVISOR_FRI_SERVICE_NAME_H_

namespace seedvisor::fri {

inline constexpr char kService[] = "seedvisor.fri.v1.FRI";

}  // namespace seedvisor::fri

#endif  // SEEDVISOR_FRI_SERVICE_NAME_H_
