// seed_prog's futex_waitv(2) commands (issue 13): a thread blocked in
// futex_waitv at a pause waits on in every fork (the seed's waiters are
// parked, then restart the call in the fork), and a wake there finds it.
//   vwait    start a thread that waits in futex_waitv(2) on a private word
//            (index 0) and a word of shared anonymous memory (index 1), and
//            answers "woke I" after each wake, then waits again   -> ok
//   vwake I  FUTEX_WAKE word I until that wakes the thread (30 s at most):
//            the thread answers "woke I"; "none" if nothing waits
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "test/sfork/seed_waitv.h"

static uint32_t private_word;
static uint32_t* shared_word;  // in MAP_SHARED|MAP_ANONYMOUS memory
static void (*answer)(const char*);

struct waitv {  // struct futex_waitv
  uint64_t val, uaddr;
  uint32_t flags, reserved;
};

static void* waiter(void* unused) {
  (void)unused;
  for (;;) {
    struct waitv w[2] = {
        {private_word, (uintptr_t)&private_word, 2 | FUTEX_PRIVATE_FLAG, 0},
        {*shared_word, (uintptr_t)shared_word, 2 /* FUTEX2_SIZE_U32, shared */, 0},
    };
    long r = syscall(449 /* futex_waitv */, w, 2, 0, NULL, 0);
    if (r >= 0) {
      char out[32];
      snprintf(out, sizeof(out), "woke %ld", r);
      answer(out);
    }
  }
  return NULL;
}

int waitv_command(const char* line, void (*reply)(const char*)) {
  if (strcmp(line, "vwait") == 0) {
    answer = reply;
    shared_word = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_t t;
    if (shared_word == MAP_FAILED || pthread_create(&t, NULL, waiter, NULL) != 0) {
      reply("err");
    } else {
      reply("ok");
    }
    return 1;
  }
  if (strncmp(line, "vwake ", 6) == 0) {
    const int i = atoi(line + 6);
    uint32_t* word = i == 0 ? &private_word : shared_word;
    const int op = i == 0 ? FUTEX_WAKE_PRIVATE : FUTEX_WAKE;
    for (int n = 0; word != NULL && n < 30000; ++n) {
      if (syscall(SYS_futex, word, op, 1, NULL, NULL, 0) == 1) return 1;
      usleep(1000);
    }
    reply("none");
    return 1;
  }
  return 0;
}
