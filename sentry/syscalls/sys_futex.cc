// futex(2).
#include <linux/futex.h>
#include <sys/mman.h>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/timers.h"
#include "sentry/syscalls/handlers.h"
#include "sentry/vfs/inode.h"

namespace seedvisor::sentry {
namespace {

// FUTEX_WAKE_OP's encoded operation (futex_atomic_op_inuser()): the
// update of the second word in *u; false for an unknown op (ENOSYS).
// oparg and cmparg are signed 12-bit fields.
int32_t SignExtend12(uint32_t v) { return static_cast<int32_t>(v << 20) >> 20; }

bool WakeOpUpdate(uint32_t encoded, platform::Context::WordUpdate* u) {
  int32_t oparg = SignExtend12((encoded >> 12) & 0xfff);
  if (encoded & (FUTEX_OP_OPARG_SHIFT << 28)) oparg = static_cast<int32_t>(1u << (oparg & 31));
  const uint32_t arg = static_cast<uint32_t>(oparg);
  switch ((encoded >> 28) & 7) {
    case FUTEX_OP_SET: *u = {.and_mask = 0, .xor_mask = arg}; return true;
    case FUTEX_OP_ADD: *u = {.add = arg}; return true;
    case FUTEX_OP_OR: *u = {.and_mask = ~arg, .xor_mask = arg}; return true;
    case FUTEX_OP_ANDN: *u = {.and_mask = ~arg}; return true;
    case FUTEX_OP_XOR: *u = {.xor_mask = arg}; return true;
  }
  return false;
}

// Its comparison of the second word's old value; ENOSYS for an unknown one.
Result<bool> WakeOpCompare(uint32_t encoded, uint32_t old) {
  const int32_t o = static_cast<int32_t>(old), c = SignExtend12(encoded & 0xfff);
  switch ((encoded >> 24) & 15) {
    case FUTEX_OP_CMP_EQ: return o == c;
    case FUTEX_OP_CMP_NE: return o != c;
    case FUTEX_OP_CMP_LT: return o < c;
    case FUTEX_OP_CMP_LE: return o <= c;
    case FUTEX_OP_CMP_GT: return o > c;
    case FUTEX_OP_CMP_GE: return o >= c;
  }
  return Errno(ENOSYS);
}

// The timeout at `uaddr` (null: none) as an absolute CLOCK_MONOTONIC
// deadline in *out. `absolute` times are on CLOCK_REALTIME if `realtime`,
// else CLOCK_MONOTONIC; relative ones start now (futex_init_timeout()).
// A time past KTIME_MAX waits as long as KTIME_MAX (ktime_add_safe()).
Result<const timespec*> FutexDeadline(Task& t, UserAddr uaddr, bool absolute, bool realtime,
                                      timespec* out) {
  if (uaddr.IsNull()) return static_cast<const timespec*>(nullptr);
  timespec ts;
  SV_TRY(t.CopyInObj(uaddr, &ts));
  if (ts.tv_sec < 0 || ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000) return Errno(EINVAL);
  constexpr __int128 kKtimeMax = INT64_MAX;
  __int128 ns = static_cast<__int128>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  if (ns > kKtimeMax) ns = kKtimeMax;
  if (absolute) {
    // An absolute time on the chosen clock, turned into one on the
    // monotonic clock now (a later step of CLOCK_REALTIME is not followed).
    timespec now;
    clock_gettime(realtime ? CLOCK_REALTIME : CLOCK_MONOTONIC, &now);
    ns -= static_cast<__int128>(now.tv_sec) * 1000000000 + now.tv_nsec;
  }
  ns += MonotonicNowNs();
  if (ns > kKtimeMax) ns = kKtimeMax;
  if (ns < 0) ns = 0;
  const int64_t n = static_cast<int64_t>(ns);
  *out = timespec{static_cast<time_t>(n / 1000000000LL), static_cast<long>(n % 1000000000LL)};
  return static_cast<const timespec*>(out);
}

// get_futex_key(): a shared futex is keyed by its page, which must be
// there to be looked up (get_user_pages_fast()): a word unmapped, PROT_NONE
// or past the end of its file is EFAULT. A private one is keyed by its
// address alone.
Status CheckSharedWord(Task& t, UserAddr addr, bool priv) {
  if (priv) return {};
  uint32_t word;
  return t.CopyInObj(addr, &word);
}

}  // namespace

SyscallReturn SysFutex(Task& t, const SyscallArgs& a) {
  const UserAddr addr = a.Addr(0);
  const int op = a.Int(1) & FUTEX_CMD_MASK;
  const bool realtime = (a.Int(1) & FUTEX_CLOCK_REALTIME) != 0;
  const uint32_t val = a.Uint(2);
  const bool priv = (a.Int(1) & FUTEX_PRIVATE_FLAG) != 0;
  FutexTable& f = t.kernel().futex();
  // do_futex(): FUTEX_CLOCK_REALTIME is for the waits with an absolute
  // timeout that may choose their clock; FUTEX_LOCK_PI's is CLOCK_REALTIME
  // already, and asking for it there is ENOSYS, as for the other PI calls.
  if (realtime && (op == FUTEX_LOCK_PI || op == FUTEX_TRYLOCK_PI || op == FUTEX_UNLOCK_PI ||
                   op == FUTEX_CMP_REQUEUE_PI)) {
    return Errno(ENOSYS);
  }
  // FUTEX_UNLOCK_PI looks at the word's owner first (futex_unlock_pi()).
  if (op == FUTEX_UNLOCK_PI) {
    Status s = f.UnlockPi(t, addr, FutexKeyFor(t.mm(), addr, priv));
    if (!s.ok()) return s.error();
    return 0;
  }
  // get_futex_key(): every futex word is a 4-aligned u32.
  if (addr.value() % 4 != 0) return Errno(EINVAL);
  switch (op) {
    case FUTEX_WAIT:
    case FUTEX_WAIT_BITSET: {
      uint32_t bitset = op == FUTEX_WAIT ? FUTEX_BITSET_MATCH_ANY : a.Uint(5);
      timespec dl{};
      SV_ASSIGN_OR_RETURN(const timespec* deadline,
                          FutexDeadline(t, a.Addr(3), op == FUTEX_WAIT_BITSET, realtime, &dl));
      FutexKey k = FutexKeyFor(t.mm(), addr, priv);
      Status s = f.Wait(t, addr, val, bitset, deadline, k.space, k.addr);
      if (!s.ok()) {
        // futex_wait restarts only without a timeout (ERESTARTSYS vs EINTR).
        // A park (sandbox quiesce) is not a signal: restart either way (a
        // relative timeout starts over; Linux's restart block would keep it).
        if (s.error().value() == kERESTARTSYS && t.ParkInterrupted()) return Errno(kERESTARTNOINTR);
        if (s.error().value() == kERESTARTSYS && deadline != nullptr) return Errno(EINTR);
        return s.error();
      }
      return 0;
    }
    case FUTEX_WAKE:
    case FUTEX_WAKE_BITSET: {
      uint32_t bitset = op == FUTEX_WAKE ? FUTEX_BITSET_MATCH_ANY : a.Uint(5);
      if (bitset == 0) return Errno(EINVAL);
      SV_TRY(CheckSharedWord(t, addr, priv));
      FutexKey k = FutexKeyFor(t.mm(), addr, priv);
      const int n = f.Wake(k.space, UserAddr(k.addr), static_cast<int>(val), bitset);
      if (n < 0) return Errno(-n);
      return static_cast<uint64_t>(n);
    }
    case FUTEX_REQUEUE:
    case FUTEX_CMP_REQUEUE: {
      // futex_requeue(): negative counts first (CVE-2018-6927), then both
      // keys, then the value.
      if (static_cast<int>(val) < 0 || static_cast<int>(a.Uint(3)) < 0) return Errno(EINVAL);
      SV_TRY(CheckSharedWord(t, addr, priv));
      SV_TRY(CheckSharedWord(t, a.Addr(4), priv));
      if (op == FUTEX_CMP_REQUEUE) {
        uint32_t cur;
        SV_TRY(t.CopyInObj(addr, &cur));
        if (cur != a.Uint(5)) return Errno(EAGAIN);
      }
      FutexKey from = FutexKeyFor(t.mm(), addr, priv), to = FutexKeyFor(t.mm(), a.Addr(4), priv);
      const int n = f.Requeue(from.space, UserAddr(from.addr), UserAddr(to.addr),
                              static_cast<int>(val), static_cast<int>(a.Uint(3)), to.space);
      if (n < 0) return Errno(-n);
      return static_cast<uint64_t>(n);
    }
    case FUTEX_WAKE_OP: {
      // The second word changes in one atomic step (a guest thread may set
      // bits in it meanwhile with its own lock-prefixed ops), then the old
      // value decides whether its waiters wake; an unknown comparison is
      // ENOSYS after the update, as in Linux.
      if (addr.value() % 4 != 0) return Errno(EINVAL);
      platform::Context::WordUpdate update;
      if (!WakeOpUpdate(a.Uint(5), &update)) return Errno(ENOSYS);
      uint32_t old;
      SV_ASSIGN_OR_RETURN(old, t.AtomicUpdateWord(a.Addr(4), update));
      bool cond;
      SV_ASSIGN_OR_RETURN(cond, WakeOpCompare(a.Uint(5), old));
      FutexKey k1 = FutexKeyFor(t.mm(), addr, priv), k2 = FutexKeyFor(t.mm(), a.Addr(4), priv);
      int n = f.Wake(k1.space, UserAddr(k1.addr), static_cast<int>(val), FUTEX_BITSET_MATCH_ANY);
      if (cond) {
        n += f.Wake(k2.space, UserAddr(k2.addr), static_cast<int>(a.Uint(3)),
                    FUTEX_BITSET_MATCH_ANY);
      }
      return static_cast<uint64_t>(n);
    }
    case FUTEX_LOCK_PI:
    case FUTEX_LOCK_PI2:
    case FUTEX_TRYLOCK_PI: {
      // LOCK_PI's timeout is absolute CLOCK_REALTIME; LOCK_PI2's absolute on
      // CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME; TRYLOCK_PI has none.
      timespec dl{};
      const timespec* deadline = nullptr;
      if (op != FUTEX_TRYLOCK_PI) {
        SV_ASSIGN_OR_RETURN(deadline, FutexDeadline(t, a.Addr(3), /*absolute=*/true,
                                                    op == FUTEX_LOCK_PI || realtime, &dl));
      }
      Status s = f.LockPi(t, addr, FutexKeyFor(t.mm(), addr, priv), deadline,
                          op == FUTEX_TRYLOCK_PI);
      if (!s.ok()) {
        // futex_lock_pi() turns EINTR into ERESTARTNOINTR: a signal never
        // ends the wait (the timeout is absolute, so a restart keeps it).
        if (s.error().value() == kERESTARTSYS) return Errno(kERESTARTNOINTR);
        return s.error();
      }
      return 0;
    }
    case FUTEX_WAIT_REQUEUE_PI: {
      // An absolute timeout, CLOCK_MONOTONIC unless FUTEX_CLOCK_REALTIME.
      if (a.Addr(4) == addr) return Errno(EINVAL);
      timespec dl{};
      SV_ASSIGN_OR_RETURN(const timespec* deadline,
                          FutexDeadline(t, a.Addr(3), /*absolute=*/true, realtime, &dl));
      if (a.Addr(4).value() % 4 != 0) return Errno(EINVAL);
      Status s = f.WaitRequeuePi(t, addr, val, FutexKeyFor(t.mm(), addr, priv), a.Addr(4),
                                 FutexKeyFor(t.mm(), a.Addr(4), priv), deadline);
      if (!s.ok()) return s.error();
      return 0;
    }
    case FUTEX_CMP_REQUEUE_PI: {
      // futex_requeue(): requeue_pi wakes exactly one (the one that can
      // take the free lock); nr_requeue (val2) in the timeout slot.
      const int nr_wake = static_cast<int>(val), nr_requeue = static_cast<int>(a.Uint(3));
      if (nr_wake < 0 || nr_requeue < 0 || nr_wake != 1) return Errno(EINVAL);
      if (a.Addr(4).value() % 4 != 0) return Errno(EINVAL);
      SV_ASSIGN_OR_RETURN(int n, f.CmpRequeuePi(t, addr, FutexKeyFor(t.mm(), addr, priv),
                                                a.Addr(4), FutexKeyFor(t.mm(), a.Addr(4), priv),
                                                nr_requeue, a.Uint(5)));
      return static_cast<uint64_t>(n);
    }
    default:
      return Errno(ENOSYS);
  }
}

namespace {

// struct futex_waitv (include/uapi/linux/futex.h, Linux 5.16).
struct FutexWaitv {
  uint64_t val;
  uint64_t uaddr;
  uint32_t flags;
  uint32_t reserved;
};
static_assert(sizeof(FutexWaitv) == 24);

// Its flags (futex2): the word's size in the low two bits, of which only
// FUTEX2_SIZE_U32 is implemented; FUTEX2_NUMA and FUTEX2_MPOL (named in
// Linux 6.7's uapi, implemented in 6.16: a word followed by a node id) are
// EINVAL, as before 6.16.
constexpr uint32_t kFutex2SizeMask = 0x03, kFutex2SizeU32 = 0x02, kFutex2Numa = 0x04,
                   kFutex2Mpol = 0x08, kFutex2Private = FUTEX_PRIVATE_FLAG;
constexpr uint32_t kFutex2ValidMask = kFutex2SizeMask | kFutex2Numa | kFutex2Mpol | kFutex2Private;

}  // namespace

// futex_waitv(2): sys_futex_waitv(), futex_parse_waitv() and
// futex_wait_multiple() (kernel/futex/syscalls.c, waitwake.c), checks in
// their order: flags, count and array, clock and timeout, each entry (in
// order: copy, flags, value), each key (alignment, address), then each
// word's value.
SyscallReturn SysFutexWaitv(Task& t, const SyscallArgs& a) {
  const UserAddr uwaitv = a.Addr(0);
  const uint32_t nr = a.Uint(1);
  if (a.Uint(2) != 0) return Errno(EINVAL);  // no flags defined yet
  if (nr == 0 || nr > FutexTable::kWaitvMax || uwaitv.IsNull()) return Errno(EINVAL);
  timespec dl{};
  const timespec* deadline = nullptr;
  if (!a.Addr(3).IsNull()) {
    const int clockid = a.Int(4);
    if (clockid != CLOCK_REALTIME && clockid != CLOCK_MONOTONIC) return Errno(EINVAL);
    SV_ASSIGN_OR_RETURN(deadline, FutexDeadline(t, a.Addr(3), /*absolute=*/true,
                                                clockid == CLOCK_REALTIME, &dl));
  }
  FutexTable::WaitvEntry entries[FutexTable::kWaitvMax];
  bool priv[FutexTable::kWaitvMax];
  for (uint32_t i = 0; i < nr; ++i) {
    FutexWaitv w;
    SV_TRY(t.CopyInObj(uwaitv + i * sizeof(FutexWaitv), &w));
    if ((w.flags & ~kFutex2ValidMask) || w.reserved != 0) return Errno(EINVAL);
    // futex_flags_valid(), futex_validate_input() (Linux 6.7: a value
    // wider than the word is EINVAL).
    if ((w.flags & kFutex2SizeMask) != kFutex2SizeU32 || (w.flags & (kFutex2Numa | kFutex2Mpol)))
      return Errno(EINVAL);
    if (w.val > UINT32_MAX) return Errno(EINVAL);
    entries[i].addr = UserAddr(w.uaddr);
    entries[i].val = static_cast<uint32_t>(w.val);
    priv[i] = (w.flags & kFutex2Private) != 0;
  }
  // get_futex_key() of every entry before any value is read.
  for (uint32_t i = 0; i < nr; ++i) {
    const UserAddr addr = entries[i].addr;
    if (addr.value() % 4 != 0) return Errno(EINVAL);
    if (!t.mm().IsGuestAddress(addr)) return Errno(EFAULT);  // access_ok()
    SV_TRY(CheckSharedWord(t, addr, priv[i]));
    entries[i].key = FutexKeyFor(t.mm(), addr, priv[i]);
  }
  Result<int> r = t.kernel().futex().WaitMultiple(
      t, std::span<const FutexTable::WaitvEntry>(entries, nr), deadline);
  if (!r.ok()) {
    // The timeout is absolute, so a restart keeps it: a signal restarts
    // the call where SA_RESTART says so (ERESTARTSYS), a park always.
    if (r.error().value() == kERESTARTSYS && t.ParkInterrupted()) return Errno(kERESTARTNOINTR);
    return r.error();
  }
  return static_cast<uint64_t>(*r);
}

SyscallReturn SysRefuseEperm(Task&, const SyscallArgs&) { return Errno(EPERM); }

}  // namespace seedvisor::sentry
