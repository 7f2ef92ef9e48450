// Linux native AIO (io_setup(2) and friends): sys_aio.cc holds the context
// calls and the completion ring, sys_aio_submit.cc io_submit(2) and its
// operations. The contexts are the MM's (sentry/mm/aio.h).
//
// Every read, write and fsync runs to its end inside io_submit, as Linux
// runs buffered (non-O_DIRECT) file I/O: the event is in the ring, and the
// IOCB_FLAG_RESFD eventfd signalled, when io_submit returns. Only a poll of
// a file not ready stays in flight (sys_aio_poll.h), and only it is what
// io_cancel finds. A sandbox fork copies a context whole (its ring is
// guest memory, the rest MM state and, for polls in flight, sentry memory).
#ifndef SEEDVISOR_SENTRY_SYSCALLS_SYS_AIO_H_
#define SEEDVISOR_SENTRY_SYSCALLS_SYS_AIO_H_

#include <linux/aio_abi.h>

#include <memory>

#include "sentry/mm/aio.h"
#include "sentry/syscalls/syscall.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

SyscallReturn SysIoSetup(Task& t, const SyscallArgs& a);
SyscallReturn SysIoDestroy(Task& t, const SyscallArgs& a);
SyscallReturn SysIoGetevents(Task& t, const SyscallArgs& a);
SyscallReturn SysIoPgetevents(Task& t, const SyscallArgs& a);
SyscallReturn SysIoSubmit(Task& t, const SyscallArgs& a);
SyscallReturn SysIoCancel(Task& t, const SyscallArgs& a);

namespace aio_internal {

// lookup_ioctx(): the live context whose ring is at `ctx_id` (EINVAL if none).
Result<std::shared_ptr<AioContext>> LookupContext(Task& t, uint64_t ctx_id);
// Whether the ring has room for one more event (aio_get_req()'s
// reqs_available: at most nr_events - 1 unreaped events).
bool HasRoom(Task& t, AioContext& ctx);
// aio_complete(): `ev` goes into the ring, io_getevents callers wake, and
// `eventfd` (the IOCB_FLAG_RESFD one, or null) is signalled.
void Complete(Task& t, AioContext& ctx, const io_event& ev, const FileRef& eventfd);

}  // namespace aio_internal

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SYSCALLS_SYS_AIO_H_
