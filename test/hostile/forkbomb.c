// A guest that takes all the tasks it is given: it forks children that
// block, then starts threads that block, each until clone fails, then
// releases them all, reaps them and exits 0. Run inside a small pids
// cgroup (pids_cgroup_test.sh), the sandbox must answer EAGAIN — its own
// limit or the host's refusal — and survive.
//
//   forkbomb [MAX]   prints "forked N errno E", "threads N errno E", "done"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int release[2];

static void* Block(void* arg) {
  (void)arg;
  char c;
  while (read(release[0], &c, 1) < 0 && errno == EINTR) {
  }
  return NULL;
}

int main(int argc, char** argv) {
  const int max = argc > 1 ? atoi(argv[1]) : 100000;
  if (pipe(release) != 0) return 2;
  int forked = 0, fork_errno = 0;
  while (forked < max) {
    pid_t p = fork();
    if (p < 0) {
      fork_errno = errno;
      break;
    }
    if (p == 0) {
      close(release[1]);  // the parent's close is the EOF that releases us
      Block(NULL);
      _exit(0);
    }
    ++forked;
  }
  printf("forked %d errno %s\n", forked, fork_errno ? strerror(fork_errno) : "none");
  fflush(stdout);
  // Free the children's tasks, then the same with threads.
  close(release[1]);
  for (int i = 0; i < forked; ++i) {
    if (wait(NULL) < 0) return 3;
  }
  close(release[0]);
  if (pipe(release) != 0) return 2;
  int threads = 0, thread_errno = 0;
  pthread_t* ts = calloc((size_t)max, sizeof(pthread_t));
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  while (threads < max) {
    int e = pthread_create(&ts[threads], &attr, Block, NULL);
    if (e != 0) {
      thread_errno = e;
      break;
    }
    ++threads;
  }
  printf("threads %d errno %s\n", threads, thread_errno ? strerror(thread_errno) : "none");
  fflush(stdout);
  close(release[1]);
  for (int i = 0; i < threads; ++i) pthread_join(ts[i], NULL);
  // After all that, making a process still works.
  pid_t p = fork();
  if (p == 0) _exit(7);
  int status = 0;
  if (p < 0 || waitpid(p, &status, 0) != p || !WIFEXITED(status) || WEXITSTATUS(status) != 7) {
    printf("fork after release failed\n");
    return 4;
  }
  printf("done\n");
  return 0;
}
