#include "test/syscalls/test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>

namespace syscall_test {

std::string ErrnoName(int err) {
  // strerrorname_np is glibc >= 2.32.
  const char* name = strerrorname_np(err);
  if (name == nullptr) return std::to_string(err);
  return std::string(name) + " (" + strerror(err) + ")";
}

namespace {

std::string TmpRoot() {
  const char* dir = getenv("TEST_TMPDIR");
  if (dir != nullptr && dir[0] != '\0') return dir;
  return "/tmp";
}

int RemoveOne(const char* path, const struct stat*, int, struct FTW*) {
  remove(path);
  return 0;
}

}  // namespace

TempDir::TempDir() {
  std::string tmpl = TmpRoot() + "/syscall_test.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp(" << tmpl << "): " << ErrnoName(errno);
    abort();
  }
  path_ = tmpl;
}

TempDir::~TempDir() {
  // Tests may leave read-only directories behind; as root that does not
  // matter, as another user make sure we can still remove them.
  nftw(path_.c_str(), RemoveOne, 16, FTW_DEPTH | FTW_PHYS);
}

bool WriteFile(const std::string& path, const std::string& contents,
               mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = write(fd, contents.data() + done, contents.size() - done);
    if (n <= 0) {
      int saved = errno;
      close(fd);
      errno = saved;
      return false;
    }
    done += n;
  }
  return close(fd) == 0;
}

std::vector<std::string> LineWith(const std::string& path, int key_field,
                                  const std::string& key) {
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::vector<std::string> f;
    for (std::string w; words >> w;) f.push_back(w);
    if (static_cast<int>(f.size()) > key_field && f[key_field] == key) return f;
  }
  return {};
}

std::string ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<error: open: " + ErrnoName(errno) + ">";
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      out = "<error: read: " + ErrnoName(errno) + ">";
      break;
    }
    if (n == 0) break;
    out.append(buf, n);
  }
  close(fd);
  return out;
}

void FileDescriptor::reset(int fd) {
  if (fd_ >= 0) close(fd_);
  fd_ = fd;
}

int RunInChild(const std::function<int()>& fn) {
  fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) _exit(fn());
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid, &status, 0);
  } while (r < 0 && errno == EINTR);
  return r == pid ? status : -1;
}

int RunAsNobody(const std::function<int()>& fn) {
  int st = RunInChild([&] {
    gid_t g = 65534;
    if (setgroups(1, &g) != 0 || setresgid(g, g, g) != 0 || setresuid(65534, 65534, 65534) != 0) {
      return 100;
    }
    return fn();
  });
  if (st < 0) return 200;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 200 + WTERMSIG(st);
}

namespace {

// argv[0] as main() got it (glibc keeps it), made absolute at startup before
// any test changes directory: works without /proc/self/exe.
std::string ComputeSelfExe() {
  std::string path = program_invocation_name;
  if (!path.empty() && path[0] != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof(cwd)) != nullptr)
      path = std::string(cwd) + "/" + path;
  }
  return path;
}

const std::string& SelfExePath() {
  static const std::string* path = new std::string(ComputeSelfExe());
  return *path;
}

// Computes it during static initialization, before main().
[[maybe_unused]] const bool self_exe_initialized = !SelfExePath().empty();

}  // namespace

std::string SelfExe() { return SelfExePath(); }

bool HaveCap(int cap) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2]{};
  if (syscall(SYS_capget, &h, d) != 0) return false;
  return d[cap / 32].effective & (1u << (cap % 32));
}

bool DropEffective(int cap) {
  __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct d[2]{};
  if (syscall(SYS_capget, &h, d) != 0) return false;
  d[cap / 32].effective &= ~(1u << (cap % 32));
  return syscall(SYS_capset, &h, d) == 0 && !HaveCap(cap);
}

bool SandboxHostBefore(int major, int minor) {
  const char* release = getenv("SEEDVISOR_HOST_RELEASE");
  int ma = 0, mi = 0;
  if (release == nullptr || sscanf(release, "%d.%d", &ma, &mi) != 2) return false;
  return ma < major || (ma == major && mi < minor);
}

ProcReaders::ProcReaders(const std::vector<std::vector<std::string>>& lists) {
  for (const std::vector<std::string>& names : lists) {
    threads_.emplace_back([this, names] { Read(names); });
  }
}

ProcReaders::~ProcReaders() {
  stop_.store(true);
  for (std::thread& t : threads_) t.join();
}

void ProcReaders::AwaitRounds(long n) const {
  const long until = rounds_.load() + n;
  while (rounds_.load() < until) sched_yield();
}

void ProcReaders::Read(const std::vector<std::string>& names) {
  char buf[8192];
  while (!stop_.load()) {
    const pid_t pid = pid_.load();
    if (pid == 0) {
      sched_yield();
      continue;
    }
    const std::string dir = "/proc/" + std::to_string(pid) + "/";
    for (const std::string& name : names) {
      const std::string path = dir + name;
      if (name.back() == '/') {
        const int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY);
        if (fd < 0) continue;
        while (syscall(SYS_getdents64, fd, buf, sizeof(buf)) > 0) {
        }
        close(fd);
      } else if (name.rfind("ns/", 0) == 0) {
        (void)!readlink(path.c_str(), buf, sizeof(buf));
      } else {
        const int fd = open(path.c_str(), O_RDONLY);
        if (fd < 0) continue;
        while (read(fd, buf, sizeof(buf)) > 0) {
        }
        close(fd);
      }
    }
    rounds_.fetch_add(1);
  }
}

}  // namespace syscall_test
