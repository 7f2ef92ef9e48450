#include "sentry/fs/dev/dev.h"

#include <linux/capability.h>
#include <linux/random.h>
#include <sys/random.h>
#include <sys/sysmacros.h>

#include <cstring>
#include <mutex>

#include "sentry/fs/host/stdio_file.h"
#include "sentry/fs/synth/synth.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {

namespace {

std::mutex g_tty_hook_mu;
ControllingTtyHook g_tty_hook;

// /dev/tty: the caller's controlling pty if it has one, else the sandbox's
// host terminal.
Result<FileRef> OpenTty(const std::shared_ptr<Dentry>& d, int flags) {
  ControllingTtyHook hook;
  {
    std::lock_guard l(g_tty_hook_mu);
    hook = g_tty_hook;
  }
  if (hook) {
    auto f = hook(d, flags);
    if (f.ok() || f.error() != Errno(ENXIO)) return f;
  }
  return OpenControllingTerminal(d, flags);
}

enum class Kind { kNull, kZero, kFull, kRandom };

// drivers/char/mem.c: reads of null give EOF, zero/full give zeros; writes to
// null/zero vanish, to full fail with ENOSPC; lseek always succeeds with 0.
class MemDevFile : public FileDescription {
 public:
  MemDevFile(int flags, std::shared_ptr<Dentry> d, Kind kind)
      : FileDescription(flags, std::move(d)), kind_(kind) {}

  Result<size_t> Read(Task&, char* buf, size_t len) override { return Fill(buf, len); }
  Result<size_t> PRead(Task&, char* buf, size_t len, int64_t) override { return Fill(buf, len); }
  Result<size_t> Write(Task&, const char*, size_t len) override {
    if (kind_ == Kind::kFull) return Errno(ENOSPC);
    return len;
  }
  Result<size_t> PWrite(Task&, const char*, size_t len, int64_t) override {
    if (kind_ == Kind::kFull) return Errno(ENOSPC);
    return len;
  }
  Result<int64_t> Seek(int64_t, int) override { return int64_t{0}; }
  // fsync(2) is EINVAL (mem.c's devices have no ->fsync): the default.

  // random_ioctl() (drivers/char/random.c) of random and urandom; mem.c's
  // others have none (ENOTTY). The entropy count is the pool's once ready,
  // 256 bits as /proc/sys/kernel/random/entropy_avail says; the requests
  // that feed or reset the pool need CAP_SYS_ADMIN and change nothing here
  // (the host's getrandom() is the pool).
  Result<long> Ioctl(Task& t, unsigned long cmd, UserAddr arg) override {
    if (kind_ != Kind::kRandom) return FileDescription::Ioctl(t, cmd, arg);
    switch (cmd) {
      case RNDGETENTCNT: {
        const int bits = 256;
        SV_TRY(TaskCopyOut(t, arg, &bits, sizeof bits));
        return 0L;
      }
      case RNDADDTOENTCNT:
      case RNDADDENTROPY: {
        if (!t.creds().HasCap(CAP_SYS_ADMIN)) return Errno(EPERM);
        int count;
        SV_TRY(TaskCopyIn(t, arg, &count, sizeof count));
        if (count < 0) return Errno(EINVAL);
        return 0L;
      }
      case RNDZAPENTCNT:
      case RNDCLEARPOOL:
      case RNDRESEEDCRNG:
        if (!t.creds().HasCap(CAP_SYS_ADMIN)) return Errno(EPERM);
        return 0L;
      default:
        return Errno(EINVAL);
    }
  }

 private:
  Result<size_t> Fill(char* buf, size_t len) {
    switch (kind_) {
      case Kind::kNull:
        return size_t{0};
      case Kind::kZero:
      case Kind::kFull:
        memset(buf, 0, len);
        return len;
      case Kind::kRandom: {
        size_t done = 0;
        while (done < len) {
          ssize_t n = getrandom(buf + done, len - done, 0);
          if (n < 0) {
            if (errno == EINTR) continue;
            if (done) break;
            return Errno(errno);
          }
          done += static_cast<size_t>(n);
        }
        return done;
      }
    }
    return Errno(EINVAL);
  }

  const Kind kind_;
};

std::shared_ptr<SynthDevice> MemDevice(Kind kind, int minor) {
  return std::make_shared<SynthDevice>(
      [kind](const std::shared_ptr<Dentry>& d, int flags) -> Result<FileRef> {
        return FileRef(std::make_shared<MemDevFile>(flags, d, kind));
      },
      makedev(1, minor));
}

}  // namespace

FileRef NewNullFile(int flags, std::shared_ptr<Dentry> d) {
  return std::make_shared<MemDevFile>(flags, std::move(d), Kind::kNull);
}
FileRef NewZeroFile(int flags, std::shared_ptr<Dentry> d) {
  return std::make_shared<MemDevFile>(flags, std::move(d), Kind::kZero);
}
FileRef NewFullFile(int flags, std::shared_ptr<Dentry> d) {
  return std::make_shared<MemDevFile>(flags, std::move(d), Kind::kFull);
}
FileRef NewRandomFile(int flags, std::shared_ptr<Dentry> d) {
  return std::make_shared<MemDevFile>(flags, std::move(d), Kind::kRandom);
}

void SetControllingTtyHook(ControllingTtyHook hook) {
  std::lock_guard l(g_tty_hook_mu);
  g_tty_hook = std::move(hook);
}

InodeRef NewDevFs() {
  auto root = std::make_shared<SynthDir>(0755);
  root->set_fs_magic(0x01021994);
  root->Add("null", MemDevice(Kind::kNull, 3));
  root->Add("zero", MemDevice(Kind::kZero, 5));
  root->Add("full", MemDevice(Kind::kFull, 7));
  root->Add("random", MemDevice(Kind::kRandom, 8));
  root->Add("urandom", MemDevice(Kind::kRandom, 9));
  root->Add("tty", std::make_shared<SynthDevice>(OpenTty, makedev(5, 0)));
  root->Add("console", std::make_shared<SynthDevice>(
                           [](const std::shared_ptr<Dentry>& d, int flags) {
                             return OpenControllingTerminal(d, flags);
                           },
                           makedev(5, 1), 0600));
  root->Add("fd", SynthSymlink::Fixed("/proc/self/fd"));
  root->Add("stdin", SynthSymlink::Fixed("/proc/self/fd/0"));
  root->Add("stdout", SynthSymlink::Fixed("/proc/self/fd/1"));
  root->Add("stderr", SynthSymlink::Fixed("/proc/self/fd/2"));
  root->Add("shm", std::make_shared<SynthDir>(01777));
  root->Add("pts", std::make_shared<SynthDir>(0755));  // devpts is mounted here
  root->Add("ptmx", SynthSymlink::Fixed("pts/ptmx"));
  root->Add("mqueue", std::make_shared<SynthDir>(01777));  // the OCI mqueue mount point
  return root;
}

}  // namespace seedvisor::sentry
