// Dereferences NULL two frames below main, for gdb's backtrace
// (ptrace_test.sh).
#include <stdio.h>

__attribute__((noinline)) int crash_here(volatile int* p) { return *p; }
__attribute__((noinline)) int call_crash(void) { return crash_here(0); }

int main(void) {
  puts("about to crash");
  fflush(stdout);
  return call_crash();
}
