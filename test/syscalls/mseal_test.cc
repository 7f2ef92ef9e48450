// mseal(2) (Linux 6.10): its argument checks, and what a seal refuses
// (munmap, mprotect, mremap, MAP_FIXED over it, discarding madvise on
// read-only anonymous memory) and allows, across fork. Each case seals in
// a child: a seal lasts as long as the process.
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gtest/gtest.h"
#include "test/syscalls/test_util.h"

namespace syscall_test {
namespace {

#ifndef SYS_mseal
#define SYS_mseal 462
#endif

const size_t kPage = static_cast<size_t>(getpagesize());

long Mseal(void* addr, size_t len, unsigned long flags = 0) {
  return syscall(SYS_mseal, addr, len, flags);
}

char* Map(size_t pages, int prot = PROT_READ | PROT_WRITE) {
  void* p = mmap(nullptr, pages * kPage, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
}

// -errno of a call that failed, 0 if it succeeded.
long Err(long r) { return r == -1 ? -errno : 0; }
long Err(void* r) { return r == MAP_FAILED ? -errno : 0; }

TEST(MsealTest, ArgumentChecks) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     char* p = Map(4);
                     if (p == nullptr) return 1;
                     if (Err(Mseal(p, kPage, 1)) != -EINVAL) return 2;
                     if (Err(Mseal(p + 1, kPage)) != -EINVAL) return 3;
                     // A length that page-aligns to 0: EINVAL, not a no-op.
                     if (Err(Mseal(p, ULONG_MAX - kPage + 2)) != -EINVAL) return 4;
                     if (Err(Mseal(p, 0)) != 0) return 5;
                     // A hole anywhere: ENOMEM, and nothing is sealed.
                     if (munmap(p + 2 * kPage, kPage) != 0) return 6;
                     if (Err(Mseal(p, 4 * kPage)) != -ENOMEM) return 7;
                     if (Err(Mseal(p + kPage, 2 * kPage)) != -ENOMEM) return 8;
                     if (munmap(p, 2 * kPage) != 0) return 9;
                     // Unaligned lengths round up to whole pages.
                     char* q = Map(2);
                     if (q == nullptr || Err(Mseal(q, 1)) != 0) return 10;
                     if (Err(munmap(q, kPage)) != -EPERM) return 11;
                     if (Err(munmap(q + kPage, kPage)) != 0) return 12;
                     return 0;
                   }),
                   0);
}

// The middle page of three is sealed: every call that covers it fails.
// (What mprotect did to the pages before the sealed one is not checked:
// Linux 6.10 changed none, 6.12 on changes them before it meets the seal.)
TEST(MsealTest, SealedRangeRefusesChanges) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     char* p = Map(3);
                     if (p == nullptr) return 1;
                     p[0] = p[kPage] = p[2 * kPage] = 'x';
                     char* mid = p + kPage;
                     if (Err(Mseal(mid, kPage)) != 0) return 2;
                     if (Err(Mseal(mid, kPage)) != 0) return 3;  // again: fine
                     if (Err(munmap(p, 3 * kPage)) != -EPERM) return 4;
                     if (Err(mprotect(p, 3 * kPage, PROT_READ)) != -EPERM) return 5;
                     if (Err(mprotect(mid, kPage, PROT_READ | PROT_WRITE)) != -EPERM) return 6;
                     if (Err(mremap(mid, kPage, 2 * kPage, MREMAP_MAYMOVE)) != -EPERM) return 7;
                     if (Err(mremap(mid, kPage, kPage / 2, 0)) != -EPERM) return 8;
                     char* dest = Map(1);
                     if (dest == nullptr) return 9;
                     if (Err(mremap(mid, kPage, kPage, MREMAP_MAYMOVE | MREMAP_FIXED, dest)) !=
                         -EPERM) {
                       return 10;
                     }
                     // Nor may anything be moved onto it.
                     if (Err(mremap(dest, kPage, kPage, MREMAP_MAYMOVE | MREMAP_FIXED, mid)) !=
                         -EPERM) {
                       return 11;
                     }
                     if (Err(mmap(p, 3 * kPage, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                                  -1, 0)) != -EPERM) {
                       return 12;
                     }
                     if (mid[0] != 'x' || p[0] != 'x' || p[2 * kPage] != 'x') return 13;
                     // Writable anonymous memory may still drop its pages.
                     if (Err(madvise(mid, kPage, MADV_DONTNEED)) != 0) return 14;
                     if (mid[0] != 0) return 15;
                     // The neighbours are not sealed.
                     if (Err(mprotect(p, kPage, PROT_READ)) != 0) return 16;
                     if (Err(munmap(p + 2 * kPage, kPage)) != 0) return 17;
                     return 0;
                   }),
                   0);
}

// can_modify_mm_madv(): discarding the pages of sealed read-only private
// anonymous memory would change what it holds; other advice is fine.
TEST(MsealTest, ReadOnlyAnonymousKeepsItsPages) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     char* p = Map(2);
                     if (p == nullptr) return 1;
                     p[0] = 'x';
                     if (mprotect(p, 2 * kPage, PROT_READ) != 0) return 2;
                     if (Err(Mseal(p, kPage)) != 0) return 3;
                     for (int advice : {MADV_DONTNEED, MADV_FREE, MADV_DONTFORK, MADV_WIPEONFORK}) {
                       if (Err(madvise(p, 2 * kPage, advice)) != -EPERM) return 10 + advice;
                     }
                     if (p[0] != 'x') return 4;
                     if (Err(madvise(p, kPage, MADV_WILLNEED)) != 0) return 5;
                     if (Err(madvise(p + kPage, kPage, MADV_DONTNEED)) != 0) return 6;
                     return 0;
                   }),
                   0);
}

TEST(MsealTest, ForkKeepsTheSeal) {
  EXPECT_EXIT_CODE(RunInChild([] {
                     char* p = Map(1);
                     if (p == nullptr || Err(Mseal(p, kPage)) != 0) return 1;
                     int inner = RunInChild([&] { return Err(munmap(p, kPage)) == -EPERM ? 0 : 1; });
                     return WIFEXITED(inner) && WEXITSTATUS(inner) == 0 ? 0 : 2;
                   }),
                   0);
}

}  // namespace
}  // namespace syscall_test
