// /proc/meminfo: the host's, with the hugetlb pool shown empty. The sandbox
// has no hugetlbfs pool (MAP_HUGETLB and SHM_HUGETLB are ENOMEM, as on a
// host with vm.nr_hugepages = 0), so a program that reads HugePages_Free
// before it asks (PostgreSQL's huge_pages=try does not, but others do) sees
// the answer it will get.
//
//   std::string text = MeminfoText(host_meminfo);  // "HugePages_Free:   0" ...
#ifndef SEEDVISOR_SENTRY_FS_PROC_MEMINFO_H_
#define SEEDVISOR_SENTRY_FS_PROC_MEMINFO_H_

#include <string>
#include <string_view>

namespace seedvisor::sentry {

// `host` (the host's /proc/meminfo) with HugePages_Total/Free/Rsvd/Surp 0
// and Hugetlb 0 kB, each line's width kept.
std::string MeminfoText(std::string_view host);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_FS_PROC_MEMINFO_H_
