// execve(2): replace the task's image.
#include <sys/personality.h>
#include <linux/ptrace.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "sentry/base/log.h"

#include "sentry/kernel/host_affinity.h"
#include "sentry/kernel/host_cgroups.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/keys/task_keys.h"
#include "sentry/kernel/task.h"
#include "sentry/kernel/time_namespace.h"
#include "sentry/loader/loader.h"
#include "sentry/loader/vdso_clock.h"
#include "sentry/vfs/vfs.h"
#include "sentry/vfs/write_access.h"

namespace seedvisor::sentry {
namespace {

// Linux selectors for 64-bit user code (__USER_CS, __USER_DS).
constexpr uint64_t kUserCs = 0x33;
constexpr uint64_t kUserDs = 0x2b;
constexpr int kMaxInterpreterDepth = 4;  // BINPRM_MAX_RECURSION

// "#!interp [arg]" (fs/binfmt_script.c): returns false if not a script.
Result<bool> ParseShebang(const char* head, size_t n, std::string* interp, std::string* arg) {
  if (n < 2 || head[0] != '#' || head[1] != '!') return false;
  std::string line(head + 2, n - 2);
  size_t nl = line.find('\n');
  if (nl == std::string::npos && n == 256) return Errno(ENOEXEC);  // line too long
  if (nl != std::string::npos) line.resize(nl);
  absl::string_view rest = absl::StripAsciiWhitespace(line);
  size_t sp = rest.find_first_of(" \t");
  *interp = std::string(rest.substr(0, sp));
  if (sp != absl::string_view::npos) *arg = std::string(absl::StripAsciiWhitespace(rest.substr(sp)));
  if (interp->empty()) return Errno(ENOEXEC);
  return true;
}

}  // namespace

Status Task::Execve(const std::string& path, std::vector<std::string> argv,
                    std::vector<std::string> envp, bool /*at_empty_path_fd*/) {
  // do_execveat_common(): an empty argv gets "" as argv[0], so that a
  // program reading from argv[1] does not walk into envp (CVE-2021-4034).
  if (argv.empty()) argv.emplace_back();
  std::string exe_path = path;
  FileRef file;
  ElfInfo info;
  // do_open_execat()'s deny_write_access(): no file open for writing is
  // run (ETXTBSY), and none is opened for writing while the exec loads it.
  // Scripts and the ELF interpreter are writable again once the exec is
  // done; the executable stays denied while an address space runs it
  // (mm->exe_file, given up when its last reference goes).
  std::vector<WriteAccess> loading;
  WriteAccess exe_denied;
  for (int depth = 0;; ++depth) {
    if (depth > kMaxInterpreterDepth) return Errno(ELOOP);
    SV_ASSIGN_OR_RETURN(file, kernel_.vfs().OpenExecutable(*this, exe_path));
    loading.push_back(std::move(exe_denied));
    SV_ASSIGN_OR_RETURN(exe_denied, WriteAccess::Deny(file->LockKey()));
    char head[256];
    SV_ASSIGN_OR_RETURN(size_t n, file->PRead(*this, head, sizeof(head), 0));
    std::string interp, arg;
    SV_ASSIGN_OR_RETURN(bool script, ParseShebang(head, n, &interp, &arg));
    if (!script) {
      SV_ASSIGN_OR_RETURN(info, ReadElf(*this, *file));
      break;
    }
    std::vector<std::string> next = {interp};
    if (!arg.empty()) next.push_back(arg);
    next.push_back(exe_path);
    if (argv.size() > 1) next.insert(next.end(), argv.begin() + 1, argv.end());
    argv = std::move(next);
    exe_path = interp;
  }
  FileRef interp_file;
  ElfInfo interp_info;
  if (!info.interp.empty()) {
    SV_ASSIGN_OR_RETURN(interp_file, kernel_.vfs().OpenExecutable(*this, info.interp));
    SV_ASSIGN_OR_RETURN(WriteAccess interp_denied, WriteAccess::Deny(interp_file->LockKey()));
    loading.push_back(std::move(interp_denied));
    SV_ASSIGN_OR_RETURN(interp_info, ReadElf(*this, *interp_file));
    if (!interp_info.interp.empty()) return Errno(ELIBBAD);
  }

  // Build the new image in a fresh address space; the old one stays intact
  // until everything has loaded, so a failed exec returns to the caller.
  absl::StatusOr<platform::ExecContext> exec_ctx = kernel_.platform().NewExecContext(ctx_.get());
  if (!exec_ctx.ok()) return Errno(ENOMEM);
  if (ctx_ == nullptr) {
    // A first image (a container's init, an exec'd process): its stub
    // comes from the zygote, in the sentry's cgroups; a pod container with
    // cgroups of its own has it join them before anything is mapped.
    // Forks and later execs fork this stub and stay there (host_cgroups.h).
    std::shared_ptr<const HostCgroups> cgroups;
    std::string container;
    {
      absl::MutexLock l(&kernel_.mu());
      if (tg_->container_pids) cgroups = tg_->container_pids->host_cgroups;
      container = tg_->container_id;
    }
    if (cgroups != nullptr && !cgroups->OpenedHere()) {
      // A sandbox fork of the sentry that made the container: those
      // cgroups are the seed's container's, and the stub stays in the
      // fork's own (host_cgroups.h).
      cgroups = nullptr;
    }
    if (cgroups != nullptr) {
      if (absl::Status s = cgroups->Join(exec_ctx->as->host_pid()); !s.ok()) {
        // Not to run outside its container's limits.
        Log::Warning("task %d: container %s: %s", tid_, container, std::string(s.message()));
        return Errno(ENOMEM);
      }
    }
  }
  auto mm = std::make_shared<MM>(exec_ctx->as);
  SV_ASSIGN_OR_RETURN(Image img, LoadImage(*mm, *file, info, interp_file.get(), &interp_info));
  // exec_task_namespaces(): the new image lives in the time namespace the
  // task's children go to (unshare(CLONE_NEWTIME) then exec enters it),
  // and reads its offsets through its vDSO too (the new address space's
  // vDSO is the host's).
  std::shared_ptr<TimeNamespace> exec_time = time_ns_for_children();
  if (exec_time != nullptr) SV_TRY(SetVdsoClockSyscall(*mm, true));
  std::string execfn = path;
  SV_ASSIGN_OR_RETURN(UserAddr sp, SetupStack(*mm, img, argv, envp, execfn, creds_));
  MM::Layout layout = mm->layout();
  layout.exe = file;
  WriteAccess::HoldUntilRelease(*file, std::move(exe_denied));
  layout.exe_path = file->DisplayPath();
  mm->set_layout(std::move(layout));

  // The point of no return: end the other threads (de_thread()).
  {
    absl::MutexLock l(&kernel_.mu());
    if (tg_->group_exiting) return Errno(EINTR);
    for (Task* t : tg_->tasks) {
      if (t != this) {
        t->exit_requested_ = true;
        t->Interrupt();
      }
    }
    ThreadGroup* tg = tg_.get();
    kernel_.mu().Await(absl::Condition(
        +[](ThreadGroup* g) { return g->tasks.size() == 1 || g->group_exiting; }, tg));
    if (tg_->group_exiting) return Errno(EINTR);
    tg_->leader = this;
    tg_->did_exec = true;
    if (exec_time != time_ns()) {
      if (exec_time != nullptr) exec_time->Enter();  // its offsets are fixed now
      set_time_ns(std::move(exec_time));
    }
    // capabilities(7) "Transformation of capabilities during execve()".
    creds_.OnExec();
    KeysOnExec(*this);  // prepare_exec_creds(): thread and process keyrings go
    // begin_new_exec(): dumpable again unless the ids differ.
    tg_->dumpable = creds_.euid == creds_.ruid && creds_.egid == creds_.rgid;
    // Signal handlers reset to SIG_DFL, except ignored ones (signal(7)).
    if (tg_->handlers.use_count() > 1) {
      tg_->handlers = std::make_shared<SignalHandlers>(*tg_->handlers);
    }
    for (KernelSigaction& act : tg_->handlers->actions) {
      uint64_t h = act.handler;
      act = KernelSigaction{};
      if (h == reinterpret_cast<uint64_t>(SIG_IGN)) act.handler = h;
    }
    if (vfork_parent_) {
      vfork_done_ = true;
      vfork_parent_->Notify();
    }
  }
  vfork_parent_.reset();
  {
    // Swapped under Kernel::mu() so that other tasks reading this one's CPU
    // clock (ThreadCpuNsLocked) see either image, and its time once.
    int64_t cpu = mm_ && mm_.use_count() == 1  // not a vfork parent's memory
                      ? mm_->address_space().CpuTimeNs()
                      : 0;
    // exec_mmap(): the old image's peak stays the process's (getrusage(2)).
    const int64_t hwm_kb =
        mm_ && mm_.use_count() == 1 ? mm_->address_space().MaxRssKb() : 0;
    std::unique_ptr<platform::Context> old_ctx;
    std::shared_ptr<MM> old_mm;
    {
      absl::MutexLock l(&kernel_.mu());
      tg_->cpu_ns += cpu;
      tg_->maxrss_kb = std::max(tg_->maxrss_kb, hwm_kb);
      kernel_.timers().DeletePosixTimers(tg_.get());  // execve(2): timers go
      old_ctx = std::exchange(ctx_, std::move(exec_ctx->ctx));
      rseq_ = RseqState{};  // rseq_execve(); old_ctx drops the host's
      old_mm = std::exchange(mm_, std::move(mm));
    }
    old_ctx.reset();  // the old stub thread detaches and ends
    ApplyHostAffinity(*this);  // the new image's stub thread is a new host thread
  }
  if (fds_shared()) set_fds(fds_->Fork());  // exec unshares the fd table (unshare_files())
  fds_->CloseOnExec();
  altstack_ = stack_t{nullptr, SS_DISABLE, 0};
  clear_child_tid_ = UserAddr();
  robust_list_ = UserAddr();
  // set_personality_64bit(): a 64-bit image never reads-implies-exec.
  set_personality(personality() & ~static_cast<uint32_t>(READ_IMPLIES_EXEC));
  size_t slash = exe_path.rfind('/');
  set_comm(slash == std::string::npos ? exe_path : exe_path.substr(slash + 1));
  if (!argv.empty() && exe_path != path) {
    // A script: comm is the script's name, as Linux shows it.
    size_t s = path.rfind('/');
    set_comm(s == std::string::npos ? path : path.substr(s + 1));
  }

  regs_ = platform::Registers{};
  // The init FP state (fpu_flush_thread()), installed in the new context
  // before the image's first instruction.
  fp_state_.Reset();
  fp_saved_ = true;
  regs_.rip = img.entry;
  regs_.rsp = sp.value();
  regs_.cs = kUserCs;
  regs_.ss = kUserDs;
  regs_.eflags = 0x202;
  regs_.orig_rax = static_cast<uint64_t>(-1);
  MarkRegistersReplaced();
  // PTRACE_EVENT_EXEC (the message: the tid before the exec), or the
  // legacy SIGTRAP.
  if (traced_.load(std::memory_order_acquire)) PtraceEvent(PTRACE_EVENT_EXEC, tid_);
  return {};
}

}  // namespace seedvisor::sentry
