// /proc/sys (kernel/sysctl.c's tables, those a program reads): kernel,
// vm, fs and net, mostly fixed values; the host's are never shown.
#include <unistd.h>

#include <climits>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/fs/inotify/inotify_limits.h"
#include "sentry/fs/mqueue/mqueue.h"
#include "sentry/fs/pipe/pipe.h"
#include "sentry/fs/proc/task_files.h"
#include "sentry/fs/synth/synth.h"
#include "sentry/ipc/ipc_namespace.h"
#include "sentry/kernel/keys/key_proc.h"
#include "sentry/kernel/keys/task_keys.h"
#include "sentry/kernel/credentials.h"
#include "sentry/kernel/kernel.h"
#include "sentry/kernel/task.h"
#include "sentry/mm/aio.h"
#include "sentry/vfs/lease_time.h"
#include "sentry/vfs/vfs.h"

namespace seedvisor::sentry {

// /proc/sys/fs/pipe-user-pages-{soft,hard} (sentry/fs/pipe/pipe_account.cc,
// which says why these are declared here and not in pipe.h).
std::string PipeUserPagesText(bool hard);
Status SetPipeUserPages(bool hard, std::string_view text);

namespace {

std::string RandomUuid() {
  unsigned char b[16];
  if (getentropy(b, sizeof(b)) != 0) memset(b, 0, sizeof(b));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  return absl::StrFormat(
      "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\n", b[0], b[1], b[2],
      b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

// A write to a sysctl of checkpoint/restore (ns_last_pid, *_next_id): the
// caller needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE
// (checkpoint_restore_ns_capable(): EPERM), the value an integer in
// [min, max] (proc_dointvec_minmax(): EINVAL). A task is calling then.
Result<int> CheckpointRestoreWrite(std::string_view text, int min, int max) {
  Task* t = CurrentTask();
  if (t == nullptr) return Errno(EPERM);
  if (!t->creds().HasCap(CAP_SYS_ADMIN) && !t->creds().HasCap(CAP_CHECKPOINT_RESTORE)) {
    return Errno(EPERM);
  }
  std::string value(text);
  absl::StripAsciiWhitespace(&value);
  int v = 0;
  if (!absl::SimpleAtoi(value, &v) || v < min || v > max) return Errno(EINVAL);
  return v;
}

// ns_last_pid (pid_ns_ctl_handler()): the id the reader's pid namespace
// gave last; a write (CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE) makes it
// go on after the value written, 0 to pid_max.
std::shared_ptr<SynthFile> NsLastPidFile(Kernel& k) {
  auto f = std::make_shared<SynthFile>(
      [&k]() -> Result<std::string> {
        Task* t = CurrentTask();
        absl::MutexLock l(&k.mu());
        return absl::StrCat(k.LastIdIn(t != nullptr ? t->pid_ns() : nullptr), "\n");
      },
      0666);
  f->set_write([&k](std::string_view text) -> Status {
    SV_ASSIGN_OR_RETURN(int last, CheckpointRestoreWrite(text, 0, Kernel::kPidMax));
    absl::MutexLock l(&k.mu());
    k.SetLastIdIn(CurrentTask()->pid_ns(), last);
    return {};
  });
  return f;
}

// kernel.{sem,msg,shm}_next_id (ipc/ipc_sysctl.c): -1 or the id the next
// object of the family asks for. Mode 0444: ipc_permissions() lets only
// the privileged open it to write; a write needs CAP_SYS_ADMIN or
// CAP_CHECKPOINT_RESTORE (checkpoint_restore_ns_capable()) and a value from
// 0 to INT_MAX (-1 comes back only when an object takes the id).
template <typename Family>
std::shared_ptr<SynthFile> IpcNextIdFile(Family& family) {
  auto f = std::make_shared<SynthFile>(
      [&family]() -> Result<std::string> { return absl::StrCat(family.NextId(), "\n"); }, 0444);
  f->set_write([&family](std::string_view text) -> Status {
    SV_ASSIGN_OR_RETURN(int id, CheckpointRestoreWrite(text, 0, INT_MAX));
    family.SetNextId(id);
    return {};
  });
  return f;
}

}  // namespace

InodeRef NewSysDir(Kernel& k) {
  auto sys = std::make_shared<SynthDir>(0555);
  auto kernel_dir = std::make_shared<SynthDir>(0555);
  auto random = std::make_shared<SynthDir>(0555);
  std::string boot_id = RandomUuid();
  // The reader's UTS namespace (proc_do_uts_string()).
  auto reader_uts = [&k]() -> UtsNames& {
    Task* t = CurrentTask();
    return t != nullptr ? t->uts() : k.uts();
  };
  kernel_dir->Add("hostname",
                  SynthFile::Text([reader_uts] { return reader_uts().hostname() + "\n"; }));
  kernel_dir->Add("domainname",
                  SynthFile::Text([reader_uts] { return reader_uts().domainname() + "\n"; }));
  kernel_dir->Add("osrelease",
                  SynthFile::Text([] { return std::string(Kernel::kRelease) + "\n"; }));
  kernel_dir->Add("ostype", SynthFile::Text([] { return std::string("Linux\n"); }));
  kernel_dir->Add("version",
                  SynthFile::Text([] { return std::string(Kernel::kVersion) + "\n"; }));
  kernel_dir->Add("pid_max", SynthFile::Text([] { return std::string("32768\n"); }));
  kernel_dir->Add("ns_last_pid", NsLastPidFile(k));
  // Nothing taints the sandbox's kernel; cores are named as by default
  // (LTP reads both).
  kernel_dir->Add("tainted", SynthFile::Text([] { return std::string("0\n"); }));
  kernel_dir->Add("core_pattern", SynthFile::Text([] { return std::string("core\n"); }));
  // The last capability the sandbox knows (libcap reads it).
  kernel_dir->Add("cap_last_cap", SynthFile::Text([] { return absl::StrCat(kLastCap, "\n"); }));
  kernel_dir->Add("ngroups_max", SynthFile::Text([] { return std::string("65536\n"); }));
  for (const char* name : {"shmmax", "shmall", "shmmni", "sem", "msgmax", "msgmnb", "msgmni"}) {
    kernel_dir->Add(name, SynthFile::Text([n = std::string(name)] { return IpcLimitText(n); }));
  }
  kernel_dir->Add("sem_next_id", IpcNextIdFile(k.ipc().sems()));
  kernel_dir->Add("msg_next_id", IpcNextIdFile(k.ipc().msgs()));
  kernel_dir->Add("shm_next_id", IpcNextIdFile(k.ipc().shms()));
  // kernel.keys: the key quotas and timeouts, root may change them.
  auto keys = std::make_shared<SynthDir>(0555);
  for (const std::string& name : KeySysctlNames()) {
    auto f = std::make_shared<SynthFile>([&k, name] { return KeySysctlText(KeysOf(k), name); },
                                         0644);
    f->set_write([&k, name](std::string_view v) { return SetKeySysctl(KeysOf(k), name, v); });
    keys->Add(name, f);
  }
  kernel_dir->Add("keys", keys);
  random->Add("uuid", SynthFile::Text([] { return RandomUuid(); }));
  random->Add("boot_id", SynthFile::Text([boot_id] { return boot_id; }));
  // Linux 5.18+ always reports a full pool of 256 bits.
  random->Add("entropy_avail", SynthFile::Text([] { return std::string("256\n"); }));
  kernel_dir->Add("random", random);
  sys->Add("kernel", kernel_dir);
  auto vm = std::make_shared<SynthDir>(0555);
  vm->Add("overcommit_memory", SynthFile::Text([] { return std::string("0\n"); }));
  vm->Add("max_map_count", SynthFile::Text([] { return std::string("65530\n"); }));
  // The lowest address the sandbox maps (MM::kMinAddr), not the host's.
  vm->Add("mmap_min_addr", SynthFile::Text([] { return absl::StrCat(MM::kMinAddr, "\n"); }));
  sys->Add("vm", vm);
  auto fs = std::make_shared<SynthDir>(0555);
  // Root may change it (fcntl(F_SETPIPE_SZ), pipe(7)).
  auto pipe_max = std::make_shared<SynthFile>([] { return PipeMaxSizeText(); }, 0644);
  pipe_max->set_write([](std::string_view v) { return SetPipeMaxSize(v); });
  fs->Add("pipe-max-size", pipe_max);
  // The pages of pipe buffers one user may have (pipe(7)); root may change them.
  for (bool hard : {false, true}) {
    auto f = std::make_shared<SynthFile>([hard] { return PipeUserPagesText(hard); }, 0644);
    f->set_write([hard](std::string_view v) { return SetPipeUserPages(hard, v); });
    fs->Add(hard ? "pipe-user-pages-hard" : "pipe-user-pages-soft", f);
  }
  fs->Add("nr_open", SynthFile::Text([] { return absl::StrCat(Kernel::kNrOpen, "\n"); }));
  // Native AIO: the sandbox's limit on and use of io_setup's nr_events.
  fs->Add("aio-max-nr",
          SynthFile::Text([] { return absl::StrCat(AioContexts::kMaxNr, "\n"); }));
  fs->Add("aio-nr", SynthFile::Text([] { return absl::StrCat(AioContexts::InUse(), "\n"); }));
  // fs.mqueue: the POSIX message queue limits, root may change them.
  auto mqueue = std::make_shared<SynthDir>(0555);
  for (const char* name :
       {"msg_max", "msgsize_max", "msg_default", "msgsize_default", "queues_max"}) {
    auto f = std::make_shared<SynthFile>(
        [&k, n = std::string(name)] { return k.mqueue().LimitText(n); }, 0644);
    f->set_write([&k, n = std::string(name)](std::string_view v) {
      return k.mqueue().SetLimit(n, v);
    });
    mqueue->Add(name, f);
  }
  fs->Add("mqueue", mqueue);
  // How long a lease break waits for the holder (root may change it).
  auto lease_break = std::make_shared<SynthFile>([] { return LeaseBreakText(); }, 0644);
  lease_break->set_write([](std::string_view v) { return SetLeaseBreakSeconds(v); });
  fs->Add("lease-break-time", lease_break);
  // The inotify limits (InotifyFile::kMaxQueued; inotify_limits.h, which
  // root may change).
  auto inotify = std::make_shared<SynthDir>(0555);
  inotify->Add("max_queued_events", SynthFile::Text([] { return std::string("16384\n"); }));
  auto max_instances =
      std::make_shared<SynthFile>([] { return InotifyMaxInstancesText(); }, 0644);
  max_instances->set_write([](std::string_view v) { return SetInotifyMaxInstances(v); });
  inotify->Add("max_user_instances", max_instances);
  auto max_watches = std::make_shared<SynthFile>([] { return InotifyMaxWatchesText(); }, 0644);
  max_watches->set_write([](std::string_view v) { return SetInotifyMaxWatches(v); });
  inotify->Add("max_user_watches", max_watches);
  fs->Add("inotify", inotify);
  sys->Add("fs", fs);
  // The listen(2) backlog clamp the sandbox's sockets apply.
  auto net = std::make_shared<SynthDir>(0555);
  auto core = std::make_shared<SynthDir>(0555);
  core->Add("somaxconn", SynthFile::Text([] { return std::string("4096\n"); }));
  net->Add("core", core);
  if (InodeRef ipv4 = NewSysNetIpv4Dir(k)) net->Add("ipv4", ipv4);
  sys->Add("net", net);
  // lseek: /proc/sys files are proc_sys_file_operations (no seq_file).
  sys->SetSubtreeSeek(SynthSeek::kSizeZero, SynthSeek::kSizeZero);
  return sys;
}

}  // namespace seedvisor::sentry
