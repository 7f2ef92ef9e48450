// The stub's host mappings as /proc/PID/maps lists them: what the kvm
// platform consults for the few guest faults its page tables cannot
// classify alone (README.md, "SIGBUS"): whether a not-present page is a
// PROT_NONE page, an unmapped one, or a page of a file or shared memory
// object.
//
//   std::optional<HostVma> v = FindHostVma(pid, addr);
//   if (v && v->backed && v->prot != PROT_NONE) ...
#ifndef SEEDVISOR_PLATFORM_KVM_KVM_HOST_MAPS_H_
#define SEEDVISOR_PLATFORM_KVM_KVM_HOST_MAPS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace seedvisor::platform::kvm {

struct HostVma {
  uint64_t start = 0, end = 0;
  int prot = 0;         // PROT_READ | PROT_WRITE | PROT_EXEC as listed
  bool backed = false;  // a file or a shared memory object (an inode)
};

// One line of /proc/PID/maps; nullopt if it does not parse.
std::optional<HostVma> ParseMapsLine(std::string_view line);
// Process `pid`'s mappings that lie below `top`, in address order.
std::vector<HostVma> HostVmas(pid_t pid, uint64_t top);
// The mapping of process `pid` that holds `addr`, if any.
std::optional<HostVma> FindHostVma(pid_t pid, uint64_t addr);
// Process `pid`'s vDSO and the kernel's time data it reads: the mappings
// named [vvar], [vvar_vclock] (Linux 6.13 and later) and [vdso], in
// address order (the guest's vDSO on kvm, README.md).
std::vector<HostVma> HostVdsoVmas(pid_t pid);

}  // namespace seedvisor::platform::kvm

#endif  // SEEDVISOR_PLATFORM_KVM_KVM_HOST_MAPS_H_
