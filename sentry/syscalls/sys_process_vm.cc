// process_vm_readv(2)/process_vm_writev(2): between this task and process
// `pid` of the sandbox, under PTRACE_MODE_ATTACH_REALCREDS; the other
// process's memory is sentry data (its MM), never a host process's.
#include <sys/uio.h>

#include <algorithm>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/ptrace_access.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"

namespace seedvisor::sentry {

namespace {

SyscallReturn ProcessVm(Task& t, const SyscallArgs& a, bool write) {
  const int pid = a.Int(0);
  const uint64_t liovcnt = a.Ulong(2), riovcnt = a.Ulong(4);
  if (a.Ulong(5) != 0) return Errno(EINVAL);
  if (liovcnt > 1024 || riovcnt > 1024) return Errno(EINVAL);  // UIO_MAXIOV
  std::vector<struct iovec> local(liovcnt), remote(riovcnt);
  if (liovcnt) SV_TRY(t.CopyIn(a.Addr(1), local.data(), liovcnt * sizeof(struct iovec)));
  if (riovcnt) SV_TRY(t.CopyIn(a.Addr(3), remote.data(), riovcnt * sizeof(struct iovec)));
  for (const auto* v : {&local, &remote}) {
    uint64_t total = 0;
    for (const struct iovec& i : *v) {
      total += i.iov_len;
      if (static_cast<int64_t>(i.iov_len) < 0 || static_cast<int64_t>(total) < 0) {
        return Errno(EINVAL);
      }
    }
  }
  std::shared_ptr<MM> mm;
  {
    absl::MutexLock l(&t.kernel().mu());
    std::shared_ptr<ThreadGroup> tg = t.kernel().ThreadGroupByVtgid(t.pid_ns(), pid);
    std::shared_ptr<Task> target = tg ? nullptr : t.kernel().TaskByVtid(t.pid_ns(), pid);
    if (!tg && target) tg = target->shared_tg();
    if (!tg || tg->state != ThreadGroup::State::kAlive || tg->tasks.empty()) return Errno(ESRCH);
    Task* any = tg->leader != nullptr ? tg->leader : tg->tasks[0];
    if (!MayPtraceAccess(t, *tg, any->creds(), PtraceCreds::kReal)) return Errno(EPERM);
    mm = any->shared_mm();
  }
  if (!mm) return Errno(ESRCH);
  // Copy remote iovec by remote iovec through a bounce buffer; stop at the
  // first partial transfer (the bytes moved are the result).
  uint64_t done = 0;
  size_t li = 0, loff = 0;
  std::vector<uint8_t> buf;
  for (const struct iovec& r : remote) {
    uint64_t rbase = reinterpret_cast<uint64_t>(r.iov_base);  // SAFETY: guest address
    uint64_t roff = 0;
    while (roff < r.iov_len && li < local.size()) {
      const struct iovec& l = local[li];
      const uint64_t lbase = reinterpret_cast<uint64_t>(l.iov_base);  // SAFETY: as above
      const size_t n = std::min<uint64_t>({r.iov_len - roff, l.iov_len - loff, 1 << 16});
      if (n == 0) {
        ++li;
        loff = 0;
        continue;
      }
      buf.resize(n);
      size_t moved;
      if (write) {
        Result<size_t> got = t.mm().CopyInPartial(UserAddr(lbase + loff), buf.data(), n);
        if (!got.ok()) return done ? Result<uint64_t>(done) : Errno(EFAULT);
        Result<size_t> put = mm->CopyOutPartial(UserAddr(rbase + roff), buf.data(), *got);
        if (!put.ok()) return done ? Result<uint64_t>(done) : Errno(EFAULT);
        moved = *put;
      } else {
        Result<size_t> got = mm->CopyInPartial(UserAddr(rbase + roff), buf.data(), n);
        if (!got.ok()) return done ? Result<uint64_t>(done) : Errno(EFAULT);
        Result<size_t> put = t.mm().CopyOutPartial(UserAddr(lbase + loff), buf.data(), *got);
        if (!put.ok()) return done ? Result<uint64_t>(done) : Errno(EFAULT);
        moved = *put;
      }
      done += moved;
      if (moved < n) return done;
      roff += n;
      loff += n;
      if (loff == l.iov_len) {
        ++li;
        loff = 0;
      }
    }
  }
  return done;
}

}  // namespace

SyscallReturn SysProcessVmReadv(Task& t, const SyscallArgs& a) { return ProcessVm(t, a, false); }
SyscallReturn SysProcessVmWritev(Task& t, const SyscallArgs& a) { return ProcessVm(t, a, true); }

}  // namespace seedvisor::sentry
