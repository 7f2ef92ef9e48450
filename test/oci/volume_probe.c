// What volume_nodes_test and volume_fork_test run in their containers
// (issue 14): a unix socket served and reached through a bound host
// directory, renames racing a container's mkdir and symlink there, and
// O_APPEND writes that check the offset each one leaves.
//
//   volume_probe serve PATH            bind, listen, answer one "ping"
//   volume_probe connect PATH MSG      connect (retrying while PATH is not
//                                      there or not listening), print reply
//   volume_probe rebind PATH           bind a socket at PATH, unlink it,
//                                      bind another there, connect to it
//   volume_probe xattr FILE            user.* attributes of FILE: the
//                                      host's user.host read, user.k set,
//                                      user.gone set and removed, the list,
//                                      and trusted.t refused
//   volume_probe own-race DIR SECONDS N  mkdir/symlink N new names in DIR
//                                      (for SECONDS at most) while a thread
//                                      renames DIR/victim and DIR/vlink
//                                      over them and back
//   volume_probe append PATH GO SECONDS  open PATH O_APPEND, wait for the
//                                      file GO, then append records for
//                                      SECONDS; writes PATH.result.TAG
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

static double Now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void Nap(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int Die(const char* what) {
  fprintf(stderr, "volume_probe: %s: %s\n", what, strerror(errno));
  return 1;
}

static int Address(const char* path, struct sockaddr_un* a) {
  memset(a, 0, sizeof(*a));
  a->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(a->sun_path)) return -1;
  strcpy(a->sun_path, path);
  return 0;
}

static int Serve(const char* path) {
  struct sockaddr_un a;
  int s = socket(AF_UNIX, SOCK_STREAM, 0);
  if (s < 0 || Address(path, &a) != 0) return Die("socket");
  if (bind(s, (struct sockaddr*)&a, sizeof(a)) != 0) return Die("bind");
  if (listen(s, 4) != 0) return Die("listen");
  int c = accept(s, NULL, NULL);
  if (c < 0) return Die("accept");
  char buf[64] = {0};
  ssize_t n = read(c, buf, sizeof(buf) - 1);
  if (n <= 0) return Die("read");
  char reply[96];
  int len = snprintf(reply, sizeof(reply), "pong:%s", buf);
  if (write(c, reply, (size_t)len) != len) return Die("write");
  close(c);
  printf("served\n");
  return 0;
}

static int Connect(const char* path, const char* msg) {
  struct sockaddr_un a;
  if (Address(path, &a) != 0) return Die("address");
  // The server container may not have bound or listened yet: up to 60 s.
  for (double end = Now() + 60;;) {
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) return Die("socket");
    if (connect(s, (struct sockaddr*)&a, sizeof(a)) == 0) {
      if (write(s, msg, strlen(msg)) != (ssize_t)strlen(msg)) return Die("write");
      char buf[96] = {0};
      ssize_t n = read(s, buf, sizeof(buf) - 1);
      if (n < 0) return Die("read");
      printf("%s\n", buf);
      return 0;
    }
    if ((errno != ENOENT && errno != ECONNREFUSED) || Now() > end) return Die("connect");
    close(s);
    Nap(20);
  }
}

static int Rebind(const char* path) {
  struct sockaddr_un a;
  if (Address(path, &a) != 0) return Die("address");
  int first = socket(AF_UNIX, SOCK_STREAM, 0), second = socket(AF_UNIX, SOCK_STREAM, 0);
  int client = socket(AF_UNIX, SOCK_STREAM, 0);
  if (first < 0 || second < 0 || client < 0) return Die("socket");
  if (bind(first, (struct sockaddr*)&a, sizeof(a)) != 0 || listen(first, 1) != 0) {
    return Die("bind first");
  }
  // The first stays bound: its file's inode must not be the second's.
  if (unlink(path) != 0) return Die("unlink");
  if (bind(second, (struct sockaddr*)&a, sizeof(a)) != 0 || listen(second, 1) != 0) {
    return Die("bind second");
  }
  if (connect(client, (struct sockaddr*)&a, sizeof(a)) != 0) return Die("connect");
  int c = accept4(second, NULL, NULL, SOCK_NONBLOCK);
  if (c < 0) return Die("accept from the second");
  printf("rebound\n");
  return 0;
}

static int Xattr(const char* file) {
  char value[64] = {0}, list[256] = {0};
  ssize_t n = getxattr(file, "user.host", value, sizeof(value) - 1);
  printf("host=%s", n >= 0 ? value : strerror(errno));
  if (setxattr(file, "user.k", "v1", 2, XATTR_CREATE) != 0) return Die("setxattr user.k");
  if (setxattr(file, "user.gone", "x", 1, 0) != 0) return Die("setxattr user.gone");
  if (removexattr(file, "user.gone") != 0) return Die("removexattr user.gone");
  n = getxattr(file, "user.k", value, sizeof(value) - 1);
  printf(" k=%.*s", n > 0 ? (int)n : 0, value);
  // The host lists in no particular order: the user.* names, sorted.
  n = listxattr(file, list, sizeof(list));
  if (n < 0) return Die("listxattr");
  const char* names[8];
  int count = 0;
  for (const char* p = list; p < list + n && count < 8; p += strlen(p) + 1) {
    if (strncmp(p, "user.", 5) == 0) names[count++] = p;
  }
  for (int i = 0; i < count; i++) {
    for (int j = i + 1; j < count; j++) {
      if (strcmp(names[j], names[i]) < 0) {
        const char* t = names[i];
        names[i] = names[j];
        names[j] = t;
      }
    }
  }
  printf(" list=");
  for (int i = 0; i < count; i++) printf("%s%s", i ? "," : "", names[i]);
  int r = setxattr(file, "trusted.t", "x", 1, 0);
  printf(" trusted=%s\n", r == 0 ? "set" : strerror(errno));
  return 0;
}

// ---- own-race

static atomic_int g_next = 0;
static atomic_int g_done = 0;

static void* Renamer(void* arg) {
  (void)arg;
  char name[32];
  while (!atomic_load(&g_done)) {
    int k = atomic_load(&g_next);
    // Over the directory just made (an empty one may be replaced), or to
    // its name before it is made; back again either way.
    snprintf(name, sizeof(name), "d%d", k);
    if (rename("victim", name) == 0) rename(name, "victim");
    snprintf(name, sizeof(name), "l%d", k);
    if (rename("vlink", name) == 0) rename(name, "vlink");
  }
  return NULL;
}

static int OwnRace(const char* dir, double seconds, int rounds) {
  if (chdir(dir) != 0) return Die("chdir");
  pthread_t t;
  if (pthread_create(&t, NULL, Renamer, NULL) != 0) return Die("pthread_create");
  int made = 0;
  char name[32];
  for (double end = Now() + seconds; Now() < end && atomic_load(&g_next) < rounds;) {
    int k = atomic_load(&g_next);
    snprintf(name, sizeof(name), "d%d", k);
    if (mkdir(name, 0700) == 0) made++;
    snprintf(name, sizeof(name), "l%d", k);
    if (symlink("mine", name) == 0) made++;
    atomic_store(&g_next, k + 1);
  }
  atomic_store(&g_done, 1);
  pthread_join(t, NULL);
  printf("%s\n", made > 0 ? "made" : "made nothing");
  return 0;
}

// ---- append

static int Append(const char* path, const char* go, double seconds) {
  int fd = open(path, O_RDWR | O_APPEND | O_CREAT, 0644);
  if (fd < 0) return Die("open");
  char ready[512];
  snprintf(ready, sizeof(ready), "%s.ready", path);
  int r = open(ready, O_WRONLY | O_CREAT, 0644);
  if (r < 0) return Die("ready");
  close(r);
  // The test pauses, forks and resumes this sandbox meanwhile: up to 300 s.
  for (double end = Now() + 300; access(go, F_OK) != 0; Nap(10)) {
    if (Now() > end) return Die("waiting for the go file");
  }
  // Taken after the go: a sandbox fork's random bytes are its own.
  unsigned tag = 0;
  if (getrandom(&tag, sizeof(tag), 0) != sizeof(tag)) return Die("getrandom");
  long writes = 0, wrong = 0;
  for (double end = Now() + seconds; Now() < end; writes++) {
    char rec[32], back[32];
    int len = snprintf(rec, sizeof(rec), "%08x %012ld\n", tag, writes);
    if (write(fd, rec, (size_t)len) != len) return Die("write");
    // O_APPEND leaves this description's offset just past its own record
    // (write(2)), whoever else appends to the file meanwhile.
    off_t pos = lseek(fd, 0, SEEK_CUR);
    if (pos < len || pread(fd, back, (size_t)len, pos - len) != len ||
        memcmp(rec, back, (size_t)len) != 0) {
      wrong++;
    }
  }
  char out[512];
  snprintf(out, sizeof(out), "%s.result.%08x", path, tag);
  FILE* f = fopen(out, "w");
  if (f == NULL) return Die("result");
  fprintf(f, "%ld %s\n", wrong, writes > 100 ? "many" : "few");
  fclose(f);
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "serve") == 0) return Serve(argv[2]);
  if (argc == 4 && strcmp(argv[1], "connect") == 0) return Connect(argv[2], argv[3]);
  if (argc == 3 && strcmp(argv[1], "rebind") == 0) return Rebind(argv[2]);
  if (argc == 3 && strcmp(argv[1], "xattr") == 0) return Xattr(argv[2]);
  if (argc == 5 && strcmp(argv[1], "own-race") == 0) {
    return OwnRace(argv[2], atof(argv[3]), atoi(argv[4]));
  }
  if (argc == 5 && strcmp(argv[1], "append") == 0) return Append(argv[2], argv[3], atof(argv[4]));
  fprintf(stderr, "usage: see volume_probe.c\n");
  return 2;
}
