// seed_prog's futex_waitv(2) commands: see seed_waitv.c.
#ifndef SEEDVISOR_TEST_SFORK_SEED_WAITV_H_
#define SEEDVISOR_TEST_SFORK_SEED_WAITV_H_

// Runs `line` if it is a waitv command, answering through `reply`: 1 if it
// was one, else 0.
int waitv_command(const char* line, void (*reply)(const char*));

#endif  // SEEDVISOR_TEST_SFORK_SEED_WAITV_H_
