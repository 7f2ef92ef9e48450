// ptrace(2) requests (the relation and the stops are sentry/kernel/ptrace.h;
// process_vm_readv/writev(2) are in sys_process_vm.cc). A tracee's
// registers, FP state and memory are sentry data: nothing here touches a
// host process or shows a host id.
#include <elf.h>
#include <linux/audit.h>
#include <linux/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "sentry/kernel/kernel.h"
#include "sentry/kernel/ptrace.h"
#include "sentry/kernel/ptrace_access.h"
#include "sentry/kernel/task.h"
#include "sentry/syscalls/handlers.h"

namespace seedvisor::sentry {
namespace {

constexpr uint64_t kTaskSizeMax = (uint64_t{1} << 47) - 4096;  // TASK_SIZE_MAX
// The kernel's struct user: glibc's, then error_code and fault_address.
constexpr uint64_t kUserSize = sizeof(struct user) + 16;
constexpr uint64_t kOptionsMask = 0xff | PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP;
// The flags user code may change (FLAG_MASK in arch/x86/kernel/ptrace.c).
constexpr uint64_t kUserFlags = 0x40dd5 | 0x200000;  // ... and ID

bool ValidSignal(uint64_t sig) { return sig <= kNumSignals; }

// The tracee `pid` if `t` traces it and it is in a ptrace-stop
// (ptrace_check_attach()); ESRCH otherwise. Under Kernel::mu().
Result<std::shared_ptr<Task>> StoppedTracee(Task& t, int pid) {
  std::shared_ptr<Task> e = t.kernel().TaskByVtid(t.pid_ns(), pid);
  if (!e || e->ptrace().tracer != &t) return Errno(ESRCH);
  const PtraceState& p = e->ptrace();
  if (p.stop == PtraceState::Stop::kNone || p.listening || p.zombie) return Errno(ESRCH);
  return e;
}

// putreg() for one field of user_regs_struct at byte `off`: EIO where Linux
// refuses the value. Segment selectors stay the sentry's (the platform runs
// every task with the same ones).
Status PutReg(platform::Registers& r, PtraceState& p, size_t off, uint64_t v) {
  uint64_t* field = reinterpret_cast<uint64_t*>(&r) + off / 8;  // SAFETY: off < sizeof(r), aligned
  switch (off) {
    case offsetof(platform::Registers, cs):
    case offsetof(platform::Registers, ss):
      if ((v & 3) != 3) return Errno(EIO);
      return {};
    case offsetof(platform::Registers, ds):
    case offsetof(platform::Registers, es):
    case offsetof(platform::Registers, fs):
    case offsetof(platform::Registers, gs):
      if (v > 0xffff || (v != 0 && (v & 3) != 3)) return Errno(EIO);
      return {};
    case offsetof(platform::Registers, fs_base):
    case offsetof(platform::Registers, gs_base):
      if (v >= kTaskSizeMax) return Errno(EIO);
      *field = v;
      return {};
    case offsetof(platform::Registers, eflags):
      // A tracer's own TF is its own; ours (PTRACE_SINGLESTEP) is dropped.
      if (p.forced_tf && (v & 0x100)) p.forced_tf = false;
      r.eflags = (r.eflags & ~kUserFlags) | (v & kUserFlags);
      return {};
    default:
      *field = v;
      return {};
  }
}

uint64_t GetReg(const platform::Registers& r, const PtraceState& p, size_t off) {
  uint64_t v = reinterpret_cast<const uint64_t*>(&r)[off / 8];  // SAFETY: as PutReg
  if (off == offsetof(platform::Registers, eflags) && p.forced_tf) v &= ~uint64_t{0x100};
  return v;
}

Status SetRegs(Task& e, const platform::Registers& in) {
  platform::Registers r = e.regs();
  for (size_t off = 0; off < sizeof(r); off += 8) {
    SV_TRY(PutReg(r, e.ptrace(), off, reinterpret_cast<const uint64_t*>(&in)[off / 8]));
  }
  e.regs() = r;
  return {};
}

platform::Registers GetRegs(Task& e) {
  platform::Registers r = e.regs();
  if (e.ptrace().forced_tf) r.eflags &= ~uint64_t{0x100};
  return r;
}

// The FXSAVE image (user_fpregs_struct).
std::vector<uint8_t> FxImage(Task& e) {
  std::vector<uint8_t> img(platform::FpState::kFxsaveSize);
  e.fp_state().CopyTo(img.data(), img.size(), platform::FpState::kFeaturesFpSse);
  return img;
}

// The XSAVE image as NT_X86_XSTATE shows it: bytes 464.. carry XCR0
// (xstate_fx_sw_bytes[USER_XSTATE_XCR0_WORD]).
std::vector<uint8_t> XstateImage(Task& e) {
  const size_t size = platform::FpState::HostSize();
  std::vector<uint8_t> img(size);
  e.fp_state().CopyTo(img.data(), size, platform::FpState::HostFeatures());
  std::memset(img.data() + platform::FpState::kSwBytesOffset, 0,
              platform::FpState::kFxsaveSize - platform::FpState::kSwBytesOffset);
  const uint64_t xcr0 = platform::FpState::HostFeatures();
  std::memcpy(img.data() + platform::FpState::kSwBytesOffset, &xcr0, sizeof(xcr0));
  return img;
}

// A new legacy (FXSAVE) area; the other components are kept.
void SetFxImage(Task& e, const uint8_t* fx) {
  const size_t size = platform::FpState::HostSize();
  std::vector<uint8_t> img(size);
  e.fp_state().CopyTo(img.data(), size, platform::FpState::HostFeatures());
  std::memcpy(img.data(), fx, platform::FpState::kSwBytesOffset);
  e.fp_state().CopyFrom(img.data(), size, platform::FpState::HostFeatures());
}

SyscallReturn GetSyscallInfo(Task& t, Task& e, uint64_t size, UserAddr out) {
  ptrace_syscall_info info{};
  const platform::Registers& r = e.regs();
  const PtraceState& p = e.ptrace();
  info.arch = AUDIT_ARCH_X86_64;
  info.instruction_pointer = r.rip;
  info.stack_pointer = r.rsp;
  size_t len = offsetof(ptrace_syscall_info, entry);
  // ptrace_get_syscall_info(): only a stop reported as SIGTRAP | 0x80
  // (PTRACE_O_TRACESYSGOOD) says which half of a syscall it is.
  const bool sysgood = p.has_siginfo && p.siginfo.si_code == (SIGTRAP | 0x80);
  if (sysgood && p.stop == PtraceState::Stop::kSyscallEntry) {
    info.op = PTRACE_SYSCALL_INFO_ENTRY;
    info.entry.nr = r.orig_rax;
    const uint64_t args[6] = {r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9};
    std::memcpy(info.entry.args, args, sizeof(args));
    len = offsetof(ptrace_syscall_info, entry.args) + sizeof(info.entry.args);
  } else if (sysgood && p.stop == PtraceState::Stop::kSyscallExit) {
    info.op = PTRACE_SYSCALL_INFO_EXIT;
    info.exit.rval = static_cast<int64_t>(r.rax);
    info.exit.is_error = info.exit.rval < 0 && info.exit.rval >= -4095;
    len = offsetof(ptrace_syscall_info, exit.is_error) + sizeof(info.exit.is_error);
  } else {
    info.op = PTRACE_SYSCALL_INFO_NONE;
  }
  SV_TRY(t.CopyOut(out, &info, std::min<uint64_t>(size, len)));
  return len;
}

SyscallReturn Regset(Task& t, Task& e, uint64_t type, UserAddr iov_addr, bool set) {
  struct iovec iov;
  SV_TRY(t.CopyInObj(iov_addr, &iov));
  const UserAddr base(reinterpret_cast<uint64_t>(iov.iov_base));  // SAFETY: a guest address
  size_t unit, size;
  switch (type) {
    case NT_PRSTATUS:
      unit = 8;
      size = sizeof(platform::Registers);
      break;
    case NT_PRFPREG:
      unit = 16;
      size = platform::FpState::kFxsaveSize;
      break;
    case NT_X86_XSTATE:
      unit = 8;
      size = platform::FpState::HostSize();
      break;
    default:
      return Errno(EINVAL);
  }
  if (iov.iov_len % unit != 0) return Errno(EINVAL);
  const size_t len = std::min(iov.iov_len, size);
  if (!set) {
    std::vector<uint8_t> img;
    {
      absl::MutexLock l(&t.kernel().mu());
      if (type == NT_PRSTATUS) {
        platform::Registers r = GetRegs(e);
        img.assign(reinterpret_cast<uint8_t*>(&r), reinterpret_cast<uint8_t*>(&r) + sizeof(r));
      } else {
        img = type == NT_PRFPREG ? FxImage(e) : XstateImage(e);
      }
    }
    SV_TRY(t.CopyOut(base, img.data(), len));
  } else {
    std::vector<uint8_t> img(size);
    if (type == NT_X86_XSTATE && len != size) return Errno(EFAULT);  // a whole image only
    if (type == NT_PRFPREG && len != size) return Errno(EINVAL);
    SV_TRY(t.CopyIn(base, img.data(), len));
    absl::MutexLock l(&t.kernel().mu());
    if (type == NT_PRSTATUS) {
      platform::Registers r = GetRegs(e);
      std::memcpy(&r, img.data(), len);
      SV_TRY(SetRegs(e, r));
    } else if (type == NT_PRFPREG) {
      SetFxImage(e, img.data());
    } else {
      e.fp_state().CopyFrom(img.data(), size, platform::FpState::HostFeatures());
    }
  }
  iov.iov_len = len;
  SV_TRY(t.CopyOutObj(iov_addr, iov));
  return 0;
}

}  // namespace

SyscallReturn SysPtrace(Task& t, const SyscallArgs& a) {
  const int64_t req = a.Long(0);
  const int pid = a.Int(1);
  const UserAddr addr = a.Addr(2);
  const uint64_t data = a.Ulong(3);
  Kernel& k = t.kernel();
  if (req == PTRACE_TRACEME) {
    absl::MutexLock l(&k.mu());
    return PtraceTraceMe(t).ok() ? Result<uint64_t>(0) : Errno(EPERM);
  }
  if (req == PTRACE_ATTACH || req == PTRACE_SEIZE) {
    if (req == PTRACE_SEIZE && (!addr.IsNull() || (data & ~kOptionsMask))) return Errno(EIO);
    if (data & PTRACE_O_SUSPEND_SECCOMP) return Errno(EPERM);  // not for a guest
    absl::MutexLock l(&k.mu());
    std::shared_ptr<Task> e = k.TaskByVtid(t.pid_ns(), pid);
    if (!e) return Errno(ESRCH);
    SV_TRY(PtraceAttach(t, *e, req == PTRACE_SEIZE,
                        req == PTRACE_SEIZE ? static_cast<uint32_t>(data) : 0));
    return 0;
  }
  if (req == PTRACE_KILL || req == PTRACE_INTERRUPT || req == PTRACE_LISTEN) {
    absl::MutexLock l(&k.mu());
    std::shared_ptr<Task> e = k.TaskByVtid(t.pid_ns(), pid);
    if (!e || e->ptrace().tracer != &t || e->ptrace().zombie) return Errno(ESRCH);
    PtraceState& p = e->ptrace();
    if (req == PTRACE_KILL) {
      siginfo_t info{};
      info.si_signo = SIGKILL;
      info.si_code = SI_USER;
      info.si_pid = t.tgid();
      // send_sig_info(SIGKILL, SEND_SIG_NOINFO): the init survives it.
      k.SendGroupSignal(e->tg(), info, nullptr, SignalSender::kSandboxTask).ok();
      return 0;
    }
    if (!p.seized) return Errno(EIO);
    if (req == PTRACE_INTERRUPT) {
      // Traps at once, or in a listening stop re-traps (ptrace_trap_notify()).
      if (p.stop == PtraceState::Stop::kNone || p.listening) {
        if (!p.trap_pending) p.trap_sig = 0;  // a SEIZE's trap keeps its signal
        p.trap_pending = true;
        e->Interrupt();
      }
      return 0;
    }
    // PTRACE_LISTEN: only from a PTRACE_EVENT_STOP.
    if (p.stop == PtraceState::Stop::kNone || p.listening) return Errno(ESRCH);
    if ((p.exit_code >> 8) != PTRACE_EVENT_STOP) return Errno(EIO);
    p.listening = true;
    p.report = false;
    e->Notify();
    return 0;
  }

  std::shared_ptr<Task> e;
  std::shared_ptr<MM> mm;
  {
    absl::MutexLock l(&k.mu());
    SV_ASSIGN_OR_RETURN(e, StoppedTracee(t, pid));
    mm = e->shared_mm();
  }
  switch (req) {
    case PTRACE_PEEKTEXT:
    case PTRACE_PEEKDATA: {
      uint64_t word;
      Result<size_t> n = mm ? mm->AccessForced(addr, &word, sizeof(word), false) : Errno(EIO);
      if (!n.ok() || *n != sizeof(word)) return Errno(EIO);
      SV_TRY(t.CopyOutObj(UserAddr(data), word));
      return 0;
    }
    case PTRACE_POKETEXT:
    case PTRACE_POKEDATA: {
      uint64_t word = data;
      Result<size_t> n = mm ? mm->AccessForced(addr, &word, sizeof(word), true) : Errno(EIO);
      if (!n.ok() || *n != sizeof(word)) return Errno(EIO);
      return 0;
    }
    case PTRACE_PEEKUSR: {
      const uint64_t off = addr.value();
      if ((off & 7) || off >= kUserSize) return Errno(EIO);
      uint64_t v = 0;
      {
        absl::MutexLock l(&k.mu());
        if (off < sizeof(platform::Registers)) {
          v = GetReg(e->regs(), e->ptrace(), off);
        } else if (off >= offsetof(struct user, u_debugreg) &&
                   off < offsetof(struct user, u_debugreg) + 8 * 8) {
          v = e->ptrace().debugreg[(off - offsetof(struct user, u_debugreg)) / 8];
        }
      }
      SV_TRY(t.CopyOutObj(UserAddr(data), v));
      return 0;
    }
    case PTRACE_POKEUSR: {
      const uint64_t off = addr.value();
      if ((off & 7) || off >= kUserSize) return Errno(EIO);
      absl::MutexLock l(&k.mu());
      if (off < sizeof(platform::Registers)) return PutReg(e->regs(), e->ptrace(), off, data).ok()
                                                         ? Result<uint64_t>(0)
                                                         : Errno(EIO);
      if (off >= offsetof(struct user, u_debugreg) &&
          off < offsetof(struct user, u_debugreg) + 8 * 8) {
        const size_t n = (off - offsetof(struct user, u_debugreg)) / 8;
        // Hardware breakpoints and watchpoints are not available to a guest:
        // addresses may be stored, DR7 may not enable any of them.
        if (n == 4 || n == 5) return Errno(EIO);
        if (n < 4 && data >= kTaskSizeMax) return Errno(EIO);
        if (n == 7 && (data & 0xff)) return Errno(EIO);
        e->ptrace().debugreg[n] = data;
      }
      return 0;
    }
    case PTRACE_GETREGS: {
      platform::Registers r;
      {
        absl::MutexLock l(&k.mu());
        r = GetRegs(*e);
      }
      SV_TRY(t.CopyOutObj(UserAddr(data), r));
      return 0;
    }
    case PTRACE_SETREGS: {
      platform::Registers r;
      SV_TRY(t.CopyInObj(UserAddr(data), &r));
      absl::MutexLock l(&k.mu());
      SV_TRY(SetRegs(*e, r));
      return 0;
    }
    case PTRACE_GETFPREGS: {
      std::vector<uint8_t> img;
      {
        absl::MutexLock l(&k.mu());
        img = FxImage(*e);
      }
      SV_TRY(t.CopyOut(UserAddr(data), img.data(), img.size()));
      return 0;
    }
    case PTRACE_SETFPREGS: {
      uint8_t img[platform::FpState::kFxsaveSize];
      SV_TRY(t.CopyIn(UserAddr(data), img, sizeof(img)));
      absl::MutexLock l(&k.mu());
      SetFxImage(*e, img);
      return 0;
    }
    case PTRACE_GETREGSET:
    case PTRACE_SETREGSET:
      return Regset(t, *e, addr.value(), UserAddr(data), req == PTRACE_SETREGSET);
    case PTRACE_GETSIGINFO: {
      siginfo_t info;
      {
        absl::MutexLock l(&k.mu());
        if (!e->ptrace().has_siginfo) return Errno(EINVAL);
        info = e->ptrace().siginfo;
      }
      SV_TRY(t.CopyOutObj(UserAddr(data), info));
      return 0;
    }
    case PTRACE_SETSIGINFO: {
      siginfo_t info;
      SV_TRY(t.CopyInObj(UserAddr(data), &info));
      absl::MutexLock l(&k.mu());
      if (!e->ptrace().has_siginfo) return Errno(EINVAL);
      e->ptrace().siginfo = info;
      return 0;
    }
    case PTRACE_GETEVENTMSG: {
      uint64_t msg;
      {
        absl::MutexLock l(&k.mu());
        msg = e->ptrace().event_msg;
      }
      SV_TRY(t.CopyOutObj(UserAddr(data), msg));
      return 0;
    }
    case PTRACE_SETOPTIONS: {
      if (data & ~kOptionsMask) return Errno(EINVAL);
      if (data & PTRACE_O_SUSPEND_SECCOMP) return Errno(EPERM);
      absl::MutexLock l(&k.mu());
      e->ptrace().options = static_cast<uint32_t>(data);
      return 0;
    }
    case PTRACE_GETSIGMASK:
    case PTRACE_SETSIGMASK: {
      if (addr.value() != sizeof(SigSet)) return Errno(EINVAL);
      if (req == PTRACE_GETSIGMASK) {
        SigSet m;
        {
          absl::MutexLock l(&k.mu());
          m = e->signal_mask();
        }
        SV_TRY(t.CopyOutObj(UserAddr(data), m));
        return 0;
      }
      SigSet m;
      SV_TRY(t.CopyInObj(UserAddr(data), &m));
      absl::MutexLock l(&k.mu());
      e->set_signal_mask(m);
      return 0;
    }
    case PTRACE_GET_SYSCALL_INFO: {
      absl::MutexLock l(&k.mu());
      return GetSyscallInfo(t, *e, addr.value(), UserAddr(data));
    }
    case PTRACE_ARCH_PRCTL: {
      // arch_prctl(2) on the tracee: the option in data, the value at addr.
      absl::MutexLock l(&k.mu());
      platform::Registers& r = e->regs();
      switch (data) {
        case 0x1003:  // ARCH_GET_FS
          SV_TRY(t.CopyOutObj(addr, static_cast<uint64_t>(r.fs_base)));
          return 0;
        case 0x1004:  // ARCH_GET_GS
          SV_TRY(t.CopyOutObj(addr, static_cast<uint64_t>(r.gs_base)));
          return 0;
        case 0x1002:  // ARCH_SET_FS
        case 0x1001:  // ARCH_SET_GS
          if (addr.value() >= kTaskSizeMax) return Errno(EPERM);
          (data == 0x1002 ? r.fs_base : r.gs_base) = addr.value();
          return 0;
        default:
          return Errno(EINVAL);
      }
    }
    case PTRACE_CONT:
    case PTRACE_SYSCALL:
    case PTRACE_SINGLESTEP:
    case PTRACE_SYSEMU:
    case PTRACE_SYSEMU_SINGLESTEP: {
      if (!ValidSignal(data)) return Errno(EIO);
      using R = PtraceState::Resume;
      const R how = req == PTRACE_CONT        ? R::kCont
                    : req == PTRACE_SYSCALL   ? R::kSyscall
                    : req == PTRACE_SINGLESTEP ? R::kSingleStep
                    : req == PTRACE_SYSEMU    ? R::kSysemu
                                              : R::kSysemuSingleStep;
      absl::MutexLock l(&k.mu());
      PtraceResume(*e, how, static_cast<int>(data));
      return 0;
    }
    case PTRACE_DETACH: {
      if (!ValidSignal(data)) return Errno(EIO);
      absl::MutexLock l(&k.mu());
      PtraceResume(*e, PtraceState::Resume::kCont, static_cast<int>(data));
      PtraceUnlink(k, *e);
      return 0;
    }
    default:
      return Errno(EIO);
  }
}

}  // namespace seedvisor::sentry
