// The guest's vDSO clock_gettime under a time namespace.
//
// The guest runs the host's own vDSO (the stub's; on kvm the same pages
// mapped into the VM), which reads the host's clocks without a syscall, so
// the offsets of a time namespace (sentry/kernel/time_namespace.h) would
// not hold for a libc clock_gettime. Linux switches the vvar page of a
// process that enters one (vdso_join_timens()); here the entry of the
// address space's __vdso_clock_gettime is rewritten instead, in its own
// copy-on-write copy of the page as a debugger's breakpoint is, to make the
// clock_gettime syscall, which the sentry answers with the offsets added.
// The ELF image around it is left as it is: programs that look the symbol
// up (libc, LTP's vDSO parser) find it where it was.
//
//   SV_TRY(SetVdsoClockSyscall(mm, /*syscall=*/t.time_ns() != nullptr));
#ifndef SEEDVISOR_SENTRY_LOADER_VDSO_CLOCK_H_
#define SEEDVISOR_SENTRY_LOADER_VDSO_CLOCK_H_

#include "sentry/base/errno.h"
#include "sentry/mm/mm.h"

namespace seedvisor::sentry {

// Makes `mm`'s vDSO clock_gettime the syscall (`syscall`) or the host's
// own code again. Nothing for an address space without a vDSO, nor on a
// host whose vDSO has no clock_gettime (the guest's calls are syscalls
// then anyway). Call only while no thread of `mm` runs guest code that the
// write could race with: a new address space (fork, exec) or the
// single-threaded caller's own (setns(2)).
Status SetVdsoClockSyscall(MM& mm, bool syscall);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_LOADER_VDSO_CLOCK_H_
