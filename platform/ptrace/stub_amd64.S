// The ptrace stub: the host process that holds a guest address space.
//
// Only the pieces every stub has (platform/stub/stub_common_amd64.inc): the
// entry point, the gadgets and the read-only scratch page. Guest code runs on
// its threads under PTRACE_SYSEMU; the sentry makes host syscalls on the
// stub's behalf (mmap, munmap, clone ...) through the gadgets.

#include "platform/stub/stub_common_amd64.inc"

        STUB_COMMON_TEXT
        STUB_COMMON_DATA
