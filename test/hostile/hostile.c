// A hostile guest for seedsc: tries to write through to the host, to walk
// out of the sandbox's root, to crash the sentry with bad jumps and bad
// syscalls. Driven by hostile_test.sh, which checks the host side.
//
//   hostile writes HOSTDIR     modify everything in HOSTDIR (prepared by the
//                              script) and /etc/hostname, through every path
//   hostile proc               /proc/self/{root,cwd,exe,fd/N} stay inside
//   hostile dotdot MARKER      ".." at / and from deep dirs stays at /;
//                              creates /tmp/MARKER through a long ../ chain
//   hostile syscalls           odd syscall numbers, huge args, bad pointers
//   hostile crash KIND         jump0x1234 | nxheap | nxstack | nullwrite |
//                              badstack | ud2 | int3 | div0: die by a signal
//   hostile segv-handler       fault, recover in a SIGSEGV handler
//   hostile netperm unpriv     (run with --network=host) drops to uid/gid
//                              65534 with no capabilities, then asks for what
//                              Linux keeps for CAP_NET_RAW/CAP_NET_ADMIN: raw
//                              and packet sockets, SO_MARK, IP_TRANSPARENT,
//                              SO_BINDTODEVICE rebinding, SIOCSIFFLAGS ...
//   hostile netperm priv       the same as root with every capability (run with
//                              --net-raw): what the host permits still works
//   hostile netperm noraw      root without --net-raw: no raw sockets, as in
//                              runsc (which takes CAP_NET_RAW away)
//   hostile stub               attacks on the platform stub's ranges (in
//                              seedsc the stub's code, its shared region
//                              and scratch page live in the guest's address
//                              space, above its user range): each in a child
//                              that must die promptly and alone
//   hostile stub-orphan        pid 1 leaves a wedged child behind and exits
//   hostile ok                 print "ok", exit 0
//
// Each check prints "RESULT <name> ok <detail>" or "RESULT <name> FAIL
// <detail>"; the process exits 0 when all its checks passed, 1 otherwise.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int failures;

static void result(const char* name, int ok, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void result(const char* name, int ok, const char* fmt, ...) {
  char detail[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  printf("RESULT %s %s %s\n", name, ok ? "ok" : "FAIL", detail);
  fflush(stdout);
  if (!ok) failures++;
}

// Checks that a call returning -1/errno succeeded (rc >= 0).
static void expect_ok(const char* name, long rc) {
  int e = errno;
  result(name, rc >= 0, "rc=%ld%s%s", rc, rc < 0 ? " errno=" : "", rc < 0 ? strerrorname_np(e) : "");
}

// Checks that a call failed with exactly errno want.
static void expect_err(const char* name, long rc, int want) {
  int e = errno;
  const char* got = rc == -1 ? strerrorname_np(e) : "success";
  result(name, rc == -1 && e == want, "rc=%ld got=%s want=%s", rc, got ? got : "?",
         strerrorname_np(want));
}

static int write_str(const char* path, int flags, const char* s) {
  int fd = open(path, flags, 0644);
  if (fd < 0) return -1;
  ssize_t n = write(fd, s, strlen(s));
  close(fd);
  return n == (ssize_t)strlen(s) ? 0 : -1;
}

static void expect_content(const char* name, const char* path, const char* want) {
  char buf[256] = {0};
  int fd = open(path, O_RDONLY);
  ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
  if (fd >= 0) close(fd);
  result(name, n >= 0 && strcmp(buf, want) == 0, "path=%s read='%s' want='%s'", path,
         n < 0 ? strerror(errno) : buf, want);
}

static char* join(const char* a, const char* b) {
  static char bufs[8][PATH_MAX];
  static int i;
  char* out = bufs[i++ % 8];
  snprintf(out, PATH_MAX, "%s/%s", a, b);
  return out;
}

// Every way to change a host file, each on its own file in dir (see
// hostile_test.sh for the layout); inside they must all work (the overlay
// takes them), and the host must not see any of them.
static void cmd_writes(const char* dir) {
  expect_ok("write_trunc", write_str(join(dir, "w"), O_WRONLY | O_TRUNC, "pwned"));
  expect_content("write_trunc_readback", join(dir, "w"), "pwned");
  expect_ok("write_readonly_mode", write_str(join(dir, "ro"), O_WRONLY | O_TRUNC, "pwned"));
  expect_ok("append", write_str(join(dir, "a"), O_WRONLY | O_APPEND, "pwned"));
  expect_content("append_readback", join(dir, "a"), "origpwned");
  expect_ok("truncate", truncate(join(dir, "t"), 0));
  expect_ok("unlink", unlink(join(dir, "u")));
  expect_ok("rename", rename(join(dir, "r"), join(dir, "r.moved")));
  expect_ok("chmod", chmod(join(dir, "c"), 0777));
  expect_ok("chown", chown(join(dir, "o"), 1234, 1234));
  struct timeval tv[2] = {{0, 0}, {0, 0}};
  expect_ok("utimes", utimes(join(dir, "m"), tv));
  expect_ok("symlink", symlink("/etc/passwd", join(dir, "newlink")));
  expect_ok("link", link(join(dir, "w"), join(dir, "hardlink")));
  expect_ok("mkdir", mkdir(join(dir, "newdir"), 0755));
  expect_ok("rmdir", rmdir(join(dir, "e")));
  expect_ok("create", write_str(join(dir, "created"), O_WRONLY | O_CREAT | O_EXCL, "new"));
  // Through a host symlink that points at a host file.
  expect_ok("write_via_symlink", write_str(join(dir, "l"), O_WRONLY | O_TRUNC, "pwned"));
  // Reopen a read-only fd for writing through /proc/self/fd/N.
  int fd = open(join(dir, "p"), O_RDONLY);
  char proc_fd[64];
  snprintf(proc_fd, sizeof(proc_fd), "/proc/self/fd/%d", fd);
  expect_ok("write_via_proc_self_fd", write_str(proc_fd, O_WRONLY | O_TRUNC, "pwned"));
  close(fd);
  // Through /proc/self/root and through a ../ chain from a deep directory.
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "/proc/self/root%s/pr", dir);
  expect_ok("write_via_proc_self_root", write_str(path, O_WRONLY | O_TRUNC, "pwned"));
  expect_ok("chdir_deep", chdir(join(dir, "deep/a/b/c")));
  snprintf(path, sizeof(path), "../../../../../../../../../../../../../../..%s/dd", dir);
  expect_ok("write_via_dotdot", write_str(path, O_WRONLY | O_TRUNC, "pwned"));
  // openat relative to a directory fd, and renameat over an existing file.
  int dfd = open(dir, O_RDONLY | O_DIRECTORY);
  expect_ok("openat_dirfd", dfd < 0 ? -1 : openat(dfd, "at", O_WRONLY | O_TRUNC));
  expect_ok("renameat_over", renameat(dfd, "w", dfd, "ro"));
  close(dfd);
  // A host file outside the prepared dir.
  expect_ok("etc_hostname", write_str("/etc/hostname", O_WRONLY | O_TRUNC, "pwned\n"));
  expect_content("etc_hostname_readback", "/etc/hostname", "pwned\n");
}

static void expect_link(const char* name, const char* link, const char* want) {
  char buf[PATH_MAX] = {0};
  ssize_t n = readlink(link, buf, sizeof(buf) - 1);
  result(name, n >= 0 && strcmp(buf, want) == 0, "readlink(%s)='%s' want='%s'", link,
         n < 0 ? strerror(errno) : buf, want);
}

// /proc/self links must resolve in the sandbox's namespace: to files that
// exist only in its overlay, and to paths as the sandbox names them.
static void cmd_proc(const char* argv0) {
  char dir[64], file[96], path[PATH_MAX];
  snprintf(dir, sizeof(dir), "/tmp/hostile_proc_%d", getpid());
  snprintf(file, sizeof(file), "%s/file", dir);
  expect_ok("mkdir_overlay", mkdir(dir, 0755));
  expect_ok("create_overlay", write_str(file, O_WRONLY | O_CREAT | O_TRUNC, "inside"));
  int fd = open(file, O_RDONLY);
  expect_ok("open_overlay", fd);
  char proc_fd[64];
  snprintf(proc_fd, sizeof(proc_fd), "/proc/self/fd/%d", fd);
  expect_link("proc_self_fd_readlink", proc_fd, file);
  expect_content("proc_self_fd_open", proc_fd, "inside");
  expect_link("proc_self_root_readlink", "/proc/self/root", "/");
  snprintf(path, sizeof(path), "/proc/self/root%s", file);
  expect_content("proc_self_root_open", path, "inside");
  expect_ok("chdir_overlay_dir", chdir(dir));
  expect_link("proc_self_cwd_readlink", "/proc/self/cwd", dir);
  expect_content("proc_self_cwd_open", "/proc/self/cwd/file", "inside");
  char* exe = realpath(argv0, NULL);
  expect_link("proc_self_exe_readlink", "/proc/self/exe", exe ? exe : "(realpath failed)");
  // /proc/self/exe opens the running binary: its ELF magic.
  char magic[5] = {0};
  int efd = open("/proc/self/exe", O_RDONLY);
  ssize_t n = efd < 0 ? -1 : read(efd, magic, 4);
  result("proc_self_exe_open", n == 4 && memcmp(magic, "\177ELF", 4) == 0, "read=%zd", n);
  // A deleted file stays readable through its fd link.
  expect_ok("unlink_open_file", unlink(file));
  expect_content("proc_self_fd_deleted_open", proc_fd, "inside");
}

// ".." never leaves the root, from / or from deep below it.
static void cmd_dotdot(const char* marker) {
  struct stat root, st;
  stat("/", &root);
  expect_ok("chdir_root", chdir("/"));
  int same = stat("..", &st) == 0 && st.st_dev == root.st_dev && st.st_ino == root.st_ino;
  result("dotdot_of_root_is_root", same, "dev=%lu ino=%lu", (unsigned long)st.st_dev,
         (unsigned long)st.st_ino);
  same = stat("/../../../..", &st) == 0 && st.st_ino == root.st_ino && st.st_dev == root.st_dev;
  result("abs_dotdot_chain_is_root", same, "ino=%lu", (unsigned long)st.st_ino);
  mkdir("/tmp/hostile_deep", 0755);
  mkdir("/tmp/hostile_deep/a", 0755);
  mkdir("/tmp/hostile_deep/a/b", 0755);
  expect_ok("chdir_deep", chdir("/tmp/hostile_deep/a/b"));
  char up[512] = "";
  for (int i = 0; i < 40; i++) strcat(up, "../");
  expect_ok("chdir_up_40", chdir(up));
  char cwd[PATH_MAX] = "";
  result("getcwd_is_root", getcwd(cwd, sizeof(cwd)) && strcmp(cwd, "/") == 0, "cwd='%s'", cwd);
  char path[PATH_MAX];
  snprintf(path, sizeof(path), "/tmp/hostile_deep/a/b/%stmp/%s", up, marker);
  expect_ok("create_via_dotdot", write_str(path, O_WRONLY | O_CREAT | O_EXCL, "marker"));
  snprintf(path, sizeof(path), "/tmp/%s", marker);
  expect_content("created_at_tmp", path, "marker");
}

// Odd syscalls: the sandbox answers with the right errno and keeps going.
static void cmd_syscalls(void) {
  expect_err("nr_1000", syscall(1000), ENOSYS);
  expect_err("nr_minus_1", syscall(-1), ENOSYS);
  expect_err("nr_100000", syscall(100000), ENOSYS);
  expect_err("nr_1000_huge_args", syscall(1000, ~0UL, ~0UL, ~0UL, ~0UL, ~0UL, ~0UL), ENOSYS);
  long ppid = syscall(SYS_getppid, ~0UL, ~0UL, ~0UL, ~0UL, ~0UL, ~0UL);
  result("getppid_huge_args", ppid >= 0, "rc=%ld", ppid);
  int p[2];
  // Non-blocking read end: if a failed call lost the pipe's data, the final
  // read fails with EAGAIN instead of hanging the whole run.
  expect_ok("pipe", pipe2(p, 0));
  fcntl(p[0], F_SETFL, O_NONBLOCK);
  expect_ok("pipe_write", write(p[1], "0123456789", 10));
  expect_err("read_bad_ptr", syscall(SYS_read, p[0], (void*)1, 10), EFAULT);
  expect_err("write_bad_ptr", syscall(SYS_write, p[1], (void*)1, 10), EFAULT);
  expect_err("write_kernel_ptr", syscall(SYS_write, p[1], (void*)0xffffffffff601000UL, 10), EFAULT);
  expect_err("open_bad_ptr", syscall(SYS_open, (void*)1, O_RDONLY), EFAULT);
  expect_err("open_kernel_ptr", syscall(SYS_open, (void*)0xffff800000000000UL, O_RDONLY), EFAULT);
  expect_err("stat_bad_path", syscall(SYS_stat, (void*)0xdeadbeef000UL, (void*)0), EFAULT);
  expect_err("stat_bad_buf", syscall(SYS_stat, "/", (void*)1), EFAULT);
  expect_err("fstat_bad_buf", syscall(SYS_fstat, 0, (void*)0x10), EFAULT);
  expect_err("getcwd_bad_buf", syscall(SYS_getcwd, (void*)1, 4096), EFAULT);
  expect_err("clock_gettime_bad_buf", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void*)1), EFAULT);
  expect_err("uname_null", syscall(SYS_uname, (void*)0), EFAULT);
  char longpath[PATH_MAX + 100];
  memset(longpath, 'a', sizeof(longpath) - 1);
  longpath[sizeof(longpath) - 1] = '\0';
  expect_err("open_path_too_long", open(longpath, O_RDONLY), ENAMETOOLONG);
  expect_err("close_huge_fd", syscall(SYS_close, 0x7fffffffffffffffL), EBADF);
  expect_err("dup_minus_1", syscall(SYS_dup, -1L), EBADF);
  expect_err("read_closed_fd", read(999, p, 1), EBADF);
  // ksys_lseek() checks whence before the file type; a pipe cannot seek.
  expect_err("lseek_bad_whence", lseek(p[0], 0, 99), EINVAL);
  expect_err("lseek_pipe", lseek(p[0], 0, SEEK_SET), ESPIPE);
  expect_err("clock_gettime_bad_clock", syscall(SYS_clock_gettime, 99, &(struct timespec){0}), EINVAL);
  expect_err("mmap_huge", (long)(intptr_t)mmap(NULL, 1UL << 62, PROT_READ,
                                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == -1 ? -1 : 0,
             ENOMEM);
  expect_err("kill_bad_signal", kill(getpid(), 1000), EINVAL);
  expect_err("rt_sigaction_bad_size", syscall(SYS_rt_sigaction, SIGUSR1, NULL, NULL, 1000), EINVAL);
  char buf[16] = {0};
  expect_ok("pipe_read_after_errors", read(p[0], buf, 10));
  result("pipe_data_intact", strcmp(buf, "0123456789") == 0, "read='%s'", buf);
  result("still_alive", 1, "pid=%d", getpid());
}

static void crash(const char* kind) {
  if (strcmp(kind, "jump0x1234") == 0) {
    void (*f)(void) = (void (*)(void))(uintptr_t)0x1234;
    f();
  } else if (strcmp(kind, "nxheap") == 0) {
    // A page with "ret" in it, mapped without PROT_EXEC.
    unsigned char* page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    page[0] = 0xc3;
    ((void (*)(void))page)();
  } else if (strcmp(kind, "nxstack") == 0) {
    volatile unsigned char code[16] = {0xc3};
    ((void (*)(void))(uintptr_t)code)();
  } else if (strcmp(kind, "nullwrite") == 0) {
    *(volatile int*)(uintptr_t)8 = 1;
  } else if (strcmp(kind, "badstack") == 0) {
    // No stack to deliver a signal on: the kernel must kill with SIGSEGV.
    __asm__ volatile("xor %%esp, %%esp\n\tpush %%rax" ::: "memory");
  } else if (strcmp(kind, "ud2") == 0) {
    __asm__ volatile("ud2");
  } else if (strcmp(kind, "int3") == 0) {
    __asm__ volatile("int3");
  } else if (strcmp(kind, "div0") == 0) {
    __asm__ volatile("xor %%ecx, %%ecx\n\tmov $1, %%eax\n\tcltd\n\tidiv %%ecx" ::: "eax", "ecx", "edx");
  } else {
    fprintf(stderr, "hostile: unknown crash kind '%s'\n", kind);
    exit(2);
  }
  printf("RESULT crash_%s FAIL survived\n", kind);
  exit(1);
}

// Network privileges (capabilities(7), CAP_NET_RAW and CAP_NET_ADMIN). The
// sentry makes host sockets with its own privileges, so each check the host
// kernel would do against the caller must be done against the guest.
static int udp4(void) { return socket(AF_INET, SOCK_DGRAM, 0); }
static int udp6(void) { return socket(AF_INET6, SOCK_DGRAM, 0); }
static long setint(int fd, int level, int name, int v) {
  return setsockopt(fd, level, name, &v, sizeof(v));
}

static void drop_privileges(void) {
  // setgroups first (it needs CAP_SETGID); then the uid change from 0 clears
  // every capability set (capabilities(7), "Effect of user ID changes").
  gid_t none[1] = {65534};
  long rc = setgroups(1, none);
  if (rc == 0) rc = setresgid(65534, 65534, 65534);
  if (rc == 0) rc = setresuid(65534, 65534, 65534);
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof(d));
  long crc = syscall(SYS_capget, &h, d);
  result("netperm_dropped", rc == 0 && crc == 0 && getuid() == 65534 && d[0].effective == 0 &&
                                d[1].effective == 0 && d[0].permitted == 0,
         "rc=%ld uid=%d eff=%#x/%#x", rc, getuid(), d[0].effective, d[1].effective);
}

static void cmd_netperm(const char* mode) {
  int priv = strcmp(mode, "priv") == 0;
  int fd;
  if (strcmp(mode, "noraw") == 0) {
    expect_err("noraw_raw_icmp", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), EPERM);
    fd = udp4();
    expect_ok("noraw_so_mark", setint(fd, SOL_SOCKET, SO_MARK, 1));  // CAP_NET_ADMIN suffices
    close(fd);
  } else if (!priv) {
    drop_privileges();
    expect_err("raw_icmp", socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), EPERM);
    expect_err("raw_raw", socket(AF_INET, SOCK_RAW, IPPROTO_RAW), EPERM);
    expect_err("raw_icmpv6", socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6), EPERM);
    // __sock_create() turns AF_INET/SOCK_PACKET into AF_PACKET; packet_create()
    // asks for CAP_NET_RAW before anything else.
    expect_err("sock_packet", socket(AF_INET, SOCK_PACKET, htons(0x0003)), EPERM);
    expect_err("af_packet", socket(AF_PACKET, SOCK_RAW, htons(0x0003)), EPERM);
    expect_err("af_packet_dgram", socket(AF_PACKET, SOCK_DGRAM, htons(0x0003)), EPERM);
    fd = udp4();
    expect_err("so_mark", setint(fd, SOL_SOCKET, SO_MARK, 1), EPERM);
    expect_err("ip_transparent", setint(fd, IPPROTO_IP, IP_TRANSPARENT, 1), EPERM);
    expect_err("so_priority_7", setint(fd, SOL_SOCKET, SO_PRIORITY, 7), EPERM);
    expect_ok("so_priority_6", setint(fd, SOL_SOCKET, SO_PRIORITY, 6));
    expect_err("so_rcvbufforce", setint(fd, SOL_SOCKET, SO_RCVBUFFORCE, 1 << 20), EPERM);
    expect_err("so_sndbufforce", setint(fd, SOL_SOCKET, SO_SNDBUFFORCE, 1 << 20), EPERM);
    // sock_setsockopt(): SO_DEBUG on needs CAP_NET_ADMIN, and says EACCES.
    expect_err("so_debug", setint(fd, SOL_SOCKET, SO_DEBUG, 1), EACCES);
    // sock_bindtoindex_locked(): binding an unbound socket is free (Linux
    // 5.7+); changing an existing binding needs CAP_NET_RAW.
    expect_ok("so_bindtodevice_first", setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3));
    expect_err("so_bindtodevice_rebind", setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "", 1), EPERM);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    strcpy(ifr.ifr_name, "lo");
    ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
    expect_err("siocsifflags", ioctl(fd, SIOCSIFFLAGS, &ifr), EPERM);
    close(fd);
    fd = udp6();
    expect_err("ipv6_transparent", setint(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, 1), EPERM);
    close(fd);
  } else {
    fd = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    expect_ok("priv_raw_icmp", fd);
    if (fd >= 0) close(fd);
    fd = udp4();
    expect_ok("priv_so_mark", setint(fd, SOL_SOCKET, SO_MARK, 1));
    expect_ok("priv_ip_transparent", setint(fd, IPPROTO_IP, IP_TRANSPARENT, 1));
    expect_ok("priv_so_bindtodevice", setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3));
    expect_ok("priv_so_bindtodevice_rebind", setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "", 1));
    close(fd);
  }
  result("netperm_done", 1, "%s", mode);
}

static sigjmp_buf recover;
static void on_segv(int sig, siginfo_t* info, void* ctx) {
  (void)ctx;
  (void)sig;
  siglongjmp(recover, (int)((uintptr_t)info->si_addr & 0xffff) | 1);
}

static void cmd_segv_handler(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigaction(SIGSEGV, &sa, NULL);
  int r = sigsetjmp(recover, 1);
  if (r == 0) {
    *(volatile int*)(uintptr_t)0x1230 = 1;
    result("segv_handler", 0, "no fault");
    return;
  }
  result("segv_handler", r == 0x1231, "si_addr low bits=0x%x want=0x1231", r);
  r = sigsetjmp(recover, 1);
  if (r == 0) {
    ((void (*)(void))(uintptr_t)0x4560)();
    result("segv_handler_jump", 0, "no fault");
    return;
  }
  result("segv_handler_jump", r == 0x4561, "si_addr low bits=0x%x want=0x4561", r);
}

// ---- The platform stub (hostile stub) ----
//
// Where seedsc's stubs live (platform/stub/stub_layout.h and
// platform/systrap/systrap_layout.h): the same in every stub, no ASLR.
// Natively nothing executable is there: every jump below dies by SIGSEGV
// before it does anything, which is also the answer we want from seedsc.
#define STUB_TEXT 0x7fffe0000000UL      // kStubBase: the image, ELF header first
#define STUB_SYSCALL (stub_entry() + 0x20)  // kStubSyscallGadget: syscall; int3
#define STUB_REGION 0x7fffc0000000UL    // systrap's shared region (kRegionBase)
#define STUB_REGION_SIZE (16UL << 20)

// Jumps to `target` with the syscall registers set as given.
__attribute__((noreturn)) static void jump_with(uint64_t target, long nr, long a0, long a1,
                                                long a2, long a3, long a4, long a5) {
  register long r10 __asm__("r10") = a3;
  register long r8 __asm__("r8") = a4;
  register long r9 __asm__("r9") = a5;
  __asm__ volatile("jmp *%[t]"
                   :
                   : [t] "b"(target), "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8),
                     "r"(r9)
                   : "memory");
  __builtin_unreachable();
}

static sigjmp_buf probe_env;
static void on_probe_fault(int sig) { siglongjmp(probe_env, sig); }

// Copies `len` bytes at `addr` if the guest can read them itself (a load,
// not a syscall); 0 if that faults.
static int probe_read(uint64_t addr, void* out, size_t len) {
  struct sigaction sa, old_segv, old_bus;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_probe_fault;
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
  int ok = 0;
  if (sigsetjmp(probe_env, 1) == 0) {
    memcpy(out, (const void*)(uintptr_t)addr, len);
    ok = 1;
  }
  sigaction(SIGSEGV, &old_segv, NULL);
  sigaction(SIGBUS, &old_bus, NULL);
  return ok;
}

// The stub's entry point (its gadgets are at fixed offsets from it), read
// from the ELF header the stub image starts with; natively: STUB_TEXT.
static uint64_t stub_entry(void) {
  unsigned char ehdr[32];
  uint64_t entry;
  if (!probe_read(STUB_TEXT, ehdr, sizeof(ehdr)) || memcmp(ehdr, "\x7f" "ELF", 4) != 0) {
    return STUB_TEXT;
  }
  memcpy(&entry, ehdr + 24, sizeof(entry));  // e_entry
  return entry;
}

// Wedges this thread inside the stub if it can: the systrap stub's `call`
// path (the memory call it makes for the sentry) run with our own rbx makes
// it block every signal, post to our memory and sleep there on a futex.
// Elsewhere (no such code: ptrace, or no stub at all natively) it jumps into
// the stub's syscall gadget with the same request.
__attribute__((noreturn)) static void stub_wedge(void) {
  static const unsigned char call_path[] = {0x48, 0x8b, 0x43, 0x30,   // mov 48(%rbx), %rax
                                            0x48, 0x8b, 0x7b, 0x38};  // mov 56(%rbx), %rdi
  static unsigned char text[4096];
  static uint64_t all = ~0UL;
  static uint64_t comm[16] __attribute__((aligned(64)));
  uint64_t target = 0;
  if (probe_read(STUB_TEXT, text, sizeof(text))) {
    void* at = memmem(text, sizeof(text), call_path, sizeof(call_path));
    if (at != NULL) target = STUB_TEXT + (uint64_t)((unsigned char*)at - text);
  }
  if (target == 0) {
    jump_with(STUB_SYSCALL, SYS_rt_sigprocmask, SIG_BLOCK, (long)&all, 0, 8, 0, 0);
  }
  comm[6] = SYS_rt_sigprocmask;  // call_nr, then call_args (CommPage)
  comm[7] = SIG_BLOCK;
  comm[8] = (uint64_t)&all;
  comm[9] = 0;
  comm[10] = 8;
  __asm__ volatile("mov %[c], %%rbx\n\tjmp *%[t]" : : [c] "r"(comm), [t] "r"(target) : "rbx", "memory");
  __builtin_unreachable();
}

// One attack in a child. The child must end by `want_sig` (or, with
// want_sig 0, by any signal) within a few seconds; `kill_after_ms` >= 0:
// the parent SIGKILLs it then (it may be wedged on purpose) and it must
// still be reaped promptly. The parent, and with it the sandbox, goes on.
static void stub_case(const char* name, int want_sig, int kill_after_ms, void (*attack)(void)) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    result(name, 0, "fork: %s", strerror(errno));
    return;
  }
  if (pid == 0) {
    signal(SIGSEGV, SIG_DFL);
    attack();
    _exit(99);
  }
  int status = 0, killed = 0;
  pid_t r = 0;
  // 10 ms steps: at most 5 s before the kill, 5 s after it.
  for (int i = 0; i < 1000 && r == 0; ++i) {
    if (!killed && (i >= 500 || (kill_after_ms >= 0 && i * 10 >= kill_after_ms))) {
      kill(pid, SIGKILL);
      killed = i;
    }
    r = waitpid(pid, &status, WNOHANG);
    if (r == 0) usleep(10000);
  }
  if (r != pid) {
    result(name, 0, "child %d not reaped 5 s after SIGKILL (waitpid=%d)", pid, r);
    return;
  }
  int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  int ok = sig != 0 && (want_sig == 0 ? (sig == SIGKILL || sig == SIGSEGV) : sig == want_sig);
  result(name, ok, "status=0x%x signal=%s want=%s", status, sig ? strsignal(sig) : "none",
         want_sig ? strsignal(want_sig) : "SIGKILL or SIGSEGV");
}

static void attack_mmap_region(void) {
  jump_with(STUB_SYSCALL, SYS_mmap, STUB_REGION, STUB_REGION_SIZE, PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}
static void attack_mmap_text(void) {
  jump_with(STUB_SYSCALL, SYS_mmap, STUB_TEXT, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}
static void attack_munmap_text(void) {
  jump_with(STUB_SYSCALL, SYS_munmap, STUB_TEXT, 3 * 4096, 0, 0, 0, 0);
}
static void attack_munmap_region(void) {
  jump_with(STUB_SYSCALL, SYS_munmap, STUB_REGION, STUB_REGION_SIZE, 0, 0, 0, 0);
}
static void attack_mprotect_region(void) {
  jump_with(STUB_SYSCALL, SYS_mprotect, STUB_REGION, STUB_REGION_SIZE, PROT_NONE, 0, 0, 0);
}
static void attack_mremap_region(void) {
  jump_with(STUB_SYSCALL, SYS_mremap, STUB_REGION, STUB_REGION_SIZE, STUB_REGION_SIZE,
            MREMAP_MAYMOVE | MREMAP_FIXED, STUB_REGION + (256UL << 20), 0);
}
static void attack_wedge(void) { stub_wedge(); }

static void cmd_stub(void) {
  // The stub's own memory calls, made from its code with our arguments:
  // refused (the ranges are sealed), and the jump itself is a SIGSEGV, as
  // natively, where nothing is mapped there.
  stub_case("stub_mmap_fixed_region", SIGSEGV, -1, attack_mmap_region);
  stub_case("stub_mmap_fixed_text", SIGSEGV, -1, attack_mmap_text);
  stub_case("stub_munmap_text", SIGSEGV, -1, attack_munmap_text);
  stub_case("stub_munmap_region", SIGSEGV, -1, attack_munmap_region);
  stub_case("stub_mprotect_region", SIGSEGV, -1, attack_mprotect_region);
  stub_case("stub_mremap_region", SIGSEGV, -1, attack_mremap_region);
  // A stub thread that blocks every signal and sleeps where the sentry
  // cannot wake it: SIGKILL must still end the process (natively the jump
  // is a SIGSEGV before the kill).
  stub_case("stub_wedged_thread_killed", 0, 300, attack_wedge);
  // After all that, this process and the sandbox work as before.
  int p[2];
  char buf[4] = {0};
  int ok = pipe(p) == 0 && write(p[1], "ok", 2) == 2 && read(p[0], buf, 2) == 2;
  result("stub_sandbox_still_works", ok && strcmp(buf, "ok") == 0, "pipe read '%s'", buf);
}

// pid 1 leaves a child wedged in the stub and exits 7: the sandbox must end
// with status 7 (the wedged child killed with it), not hang.
static void cmd_stub_orphan(void) {
  pid_t pid = fork();
  if (pid == 0) stub_wedge();
  usleep(300000);
  printf("pid1 exits\n");
  fflush(stdout);
  _exit(7);
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char* cmd = argc > 1 ? argv[1] : "";
  if (strcmp(cmd, "writes") == 0 && argc == 3) {
    cmd_writes(argv[2]);
  } else if (strcmp(cmd, "proc") == 0) {
    cmd_proc(argv[0]);
  } else if (strcmp(cmd, "dotdot") == 0 && argc == 3) {
    cmd_dotdot(argv[2]);
  } else if (strcmp(cmd, "syscalls") == 0) {
    cmd_syscalls();
  } else if (strcmp(cmd, "crash") == 0 && argc == 3) {
    crash(argv[2]);
  } else if (strcmp(cmd, "segv-handler") == 0) {
    cmd_segv_handler();
  } else if (strcmp(cmd, "netperm") == 0 && argc == 3) {
    cmd_netperm(argv[2]);
  } else if (strcmp(cmd, "stub") == 0) {
    cmd_stub();
  } else if (strcmp(cmd, "stub-orphan") == 0) {
    cmd_stub_orphan();
  } else if (strcmp(cmd, "ok") == 0) {
    printf("ok\n");
  } else {
    fprintf(stderr, "usage: hostile writes DIR | proc | dotdot MARKER | syscalls | crash KIND | "
                    "segv-handler | netperm unpriv|priv | stub | stub-orphan | ok\n");
    return 2;
  }
  return failures ? 1 : 0;
}
