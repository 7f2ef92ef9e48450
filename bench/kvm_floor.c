// kvm_floor: what one guest syscall and one guest page fault cost on this
// host's /dev/kvm, measured with the smallest VMM that can answer a syscall
// (platform/kvm/README.md: the floor under any kvm platform here), next to
// the same loops run natively (or inside a sandbox: the binary is static).
//
//   kvm_floor native [ITERS]   getppid and first-touch page faults, here
//   kvm_floor kvm [ITERS]      the same guest loops in a KVM VM whose
//                              syscalls this program answers
//
// Prints "<metric> <ns>" lines like syscall_bench: getppid (mean),
// getppid_p50, getppid_p99, touch_per_page (first write to a fresh 4 KiB
// page, 16 MiB), clock_gettime (CLOCK_MONOTONIC through libc: the vDSO
// where there is one; mean, and p50/p99 of batches of 16 calls, per call;
// native mode only); kvm mode adds kvm_create_vm, kvm_vcpu_setup,
// kvm_ioctl_floor (a KVM_RUN that returns at once: immediate_exit) and
// kvm_memslot_gib (KVM_SET_USER_MEMORY_REGION of 1 GiB, median of 8).
//
// The guest (identity-mapped: guest virtual = guest physical = our
// address): user code in ring 3; a ring-0 area (page tables, GDT, IDT, TSS,
// exception stubs that exit with `out`, and an iretq path into ring 3).
// A guest `syscall` lands at LSTAR; on this host's PVM in ring 3 (it
// emulates the instruction without a privilege change, see README.md), so
// LSTAR is a user page whose store to an address with no memory behind it
// exits to us (KVM_EXIT_MMIO); on resume the guest jumps back to rcx.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define KBASE 0x20000000ul    // ring-0 area, 2 MiB (supervisor pages)
#define UBASE 0x40000000ul    // user area, 64 MiB (user pages)
#define USIZE (64ul << 20)
#define MMIO_GVA (UBASE + (62ul << 20))  // mapped to a guest-physical hole
#define MMIO_GPA 0x30000000ul
#define TOUCH_PAGES 4096                  // 16 MiB
#define RESULT 4242

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static void print_percentiles(uint64_t* v, long n) {
  qsort(v, (size_t)n, sizeof(*v), cmp_u64);
  printf("getppid_p50 %.1f\ngetppid_p99 %.1f\n", (double)v[n / 2], (double)v[n * 99 / 100]);
}

static void die(const char* what) {
  fprintf(stderr, "kvm_floor: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int run_native(long iters) {
  for (int i = 0; i < 100; i++) syscall(SYS_getppid);
  uint64_t t0 = now_ns();
  for (long i = 0; i < iters; i++) syscall(SYS_getppid);
  printf("getppid %.1f\n", (double)(now_ns() - t0) / (double)iters);
  uint64_t* v = malloc(sizeof(uint64_t) * (size_t)iters);
  for (long i = 0; i < iters; i++) {
    uint64_t a = now_ns();
    syscall(SYS_getppid);
    v[i] = now_ns() - a;
  }
  print_percentiles(v, iters);
  char* p = mmap(NULL, TOUCH_PAGES * 4096ul, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  t0 = now_ns();
  for (long i = 0; i < TOUCH_PAGES; i++) p[i * 4096] = 1;
  printf("touch_per_page %.1f\n", (double)(now_ns() - t0) / TOUCH_PAGES);
  struct timespec ts;
  for (int i = 0; i < 100; i++) clock_gettime(CLOCK_MONOTONIC, &ts);
  t0 = now_ns();
  for (long i = 0; i < iters; i++) clock_gettime(CLOCK_MONOTONIC, &ts);
  printf("clock_gettime %.1f\n", (double)(now_ns() - t0) / (double)iters);
  const long batches = iters / 16 > 0 ? iters / 16 : 1;
  for (long i = 0; i < batches; i++) {
    uint64_t a = now_ns();
    for (int j = 0; j < 16; j++) clock_gettime(CLOCK_MONOTONIC, &ts);
    v[i] = (now_ns() - a) / 16;
  }
  qsort(v, (size_t)batches, sizeof(*v), cmp_u64);
  printf("clock_gettime_p50 %.1f\nclock_gettime_p99 %.1f\n", (double)v[batches / 2],
         (double)v[batches * 99 / 100]);
  return 0;
}

// ---- kvm mode ----

static int set_msr(int vcpu, uint32_t index, uint64_t value) {
  struct {
    struct kvm_msrs h;
    struct kvm_msr_entry e[1];
  } m;
  memset(&m, 0, sizeof(m));
  m.h.nmsrs = 1;
  m.e[0].index = index;
  m.e[0].data = value;
  return ioctl(vcpu, KVM_SET_MSRS, &m) == 1 ? 0 : -1;
}

static const uint8_t kUserProgram[] = {
    // phase 1: rbx syscalls, each must return RESULT
    0xb8, 0x6e, 0x00, 0x00, 0x00,        // 0: mov $110, %eax
    0x0f, 0x05,                          // 5: syscall
    0x3d, 0x92, 0x10, 0x00, 0x00,        // 7: cmp $4242, %eax
    0x75, 0x20,                          // c: jne bad (+0x20 -> 0x2e)
    0xff, 0xcb,                          // e: dec %ebx
    0x75, 0xee,                          // 10: jnz 0
    0x0f, 0x05,                          // 12: syscall (marker: phase 2 starts)
    // phase 2: touch r12 pages from rdi
    0x88, 0x07,                          // 14: mov %al, (%rdi)
    0x48, 0x81, 0xc7, 0x00, 0x10, 0, 0,  // 16: add $4096, %rdi
    0x49, 0xff, 0xcc,                    // 1d: dec %r12
    0x75, 0xf2,                          // 20: jnz 14
    0x0f, 0x05,                          // 22: syscall (marker: phase 2 ends)
    0x0f, 0x0b,                          // 24: ud2 (done)
    0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
    0xcc,                                // 2e: bad: int3
};

static int run_kvm(long iters) {
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("/dev/kvm");
  static uint64_t floor_lat[20000];
  {
    uint64_t t0 = now_ns();
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) die("KVM_CREATE_VM");
    printf("kvm_create_vm %.1f\n", (double)(now_ns() - t0));
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) die("KVM_CREATE_VCPU");
    struct kvm_run* r = mmap(NULL, (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0),
                             PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (r == MAP_FAILED) die("mmap kvm_run");
    r->immediate_exit = 1;
    for (int i = 0; i < 20000; i++) {
      uint64_t a = now_ns();
      ioctl(vcpu, KVM_RUN, 0);
      floor_lat[i] = now_ns() - a;
    }
    qsort(floor_lat, 20000, sizeof(uint64_t), cmp_u64);
    printf("kvm_ioctl_floor %.1f\n", (double)floor_lat[10000]);
    // One memslot per GiB of guest memory, as the kvm platform adds them
    // (platform/kvm/README.md, "Memslots"): 8 over untouched memory.
    enum { kGibs = 8 };
    char* mem = mmap(NULL, (size_t)kGibs << 30, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) die("mmap (memslots)");
    uint64_t slot_lat[kGibs];
    for (int i = 0; i < kGibs; i++) {
      const uint64_t addr = (uint64_t)mem + ((uint64_t)i << 30);
      struct kvm_userspace_memory_region mr = {
          .slot = (uint32_t)i,
          .guest_phys_addr = addr,
          .memory_size = 1ul << 30,
          .userspace_addr = addr};
      uint64_t a = now_ns();
      if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mr)) die("KVM_SET_USER_MEMORY_REGION");
      slot_lat[i] = now_ns() - a;
    }
    qsort(slot_lat, kGibs, sizeof(uint64_t), cmp_u64);
    printf("kvm_memslot_gib %.1f\n", (double)slot_lat[kGibs / 2]);
    close(vcpu);
    close(vm);
    munmap(mem, (size_t)kGibs << 30);
  }
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");
  // SAFETY: fixed addresses of our own that nothing else maps (a static
  // binary: text near 0x400000, heap after it, mmap area at the top).
  uint8_t* k = mmap((void*)KBASE, 2ul << 20, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  uint8_t* u = mmap((void*)UBASE, USIZE, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
  if (k != (uint8_t*)KBASE || u != (uint8_t*)UBASE) die("mapping the guest");
  struct kvm_userspace_memory_region slot = {0, 0, KBASE, 2ul << 20, KBASE};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot)) die("memslot (ring-0 area)");
  slot = (struct kvm_userspace_memory_region){1, 0, UBASE, USIZE, UBASE};
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &slot)) die("memslot (user area)");

  // Page tables: 2 MiB pages, identity; the last user entry is the MMIO hole.
  uint64_t* pml4 = (uint64_t*)k;
  uint64_t* pdpt = (uint64_t*)(k + 0x1000);
  uint64_t* pd0 = (uint64_t*)(k + 0x2000);
  uint64_t* pd1 = (uint64_t*)(k + 0x3000);
  pml4[0] = (KBASE + 0x1000) | 7;
  pdpt[0] = (KBASE + 0x2000) | 3;
  pdpt[1] = (KBASE + 0x3000) | 7;
  pd0[KBASE >> 21] = KBASE | 0x83;  // present, writable, 2 MiB, supervisor
  for (int i = 0; i < 31; i++) pd1[i] = (UBASE + ((uint64_t)i << 21)) | 0x87;  // + user
  pd1[31] = MMIO_GPA | 0x87;

  // Exception stubs (16 bytes each, at +0x4000): push a zero error code
  // where the CPU pushes none, push the vector, exit through port 0x11.
  for (int v = 0; v < 32; v++) {
    uint8_t* p = k + 0x4000 + v * 16;
    int n = 0;
    int has_err = v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
    if (!has_err) p[n++] = 0x6a, p[n++] = 0;  // push $0
    p[n++] = 0x6a, p[n++] = (uint8_t)v;       // push $v
    p[n++] = 0xe6, p[n++] = 0x11;             // out %al, $0x11
    p[n++] = 0x0f, p[n++] = 0x0b;             // ud2
  }
  // Into ring 3 (+0x5000): the stack holds fs base, gs base, rax and an
  // iretq frame.
  static const uint8_t kResume[] = {0x58, 0xf3, 0x48, 0x0f, 0xae, 0xd0,  // pop %rax; wrfsbase %rax
                                    0x58, 0xf3, 0x48, 0x0f, 0xae, 0xd8,  // pop %rax; wrgsbase %rax
                                    0x58, 0x48, 0xcf};                   // pop %rax; iretq
  memcpy(k + 0x5000, kResume, sizeof(kResume));
  uint64_t* gdt = (uint64_t*)(k + 0x6000);
  gdt[2] = 0x00af9b000000ffffull;  // 0x10 kernel code
  gdt[3] = 0x00cf93000000ffffull;  // 0x18 kernel data
  gdt[4] = 0x00cffb000000ffffull;  // 0x23 user code (32-bit)
  gdt[5] = 0x00cff3000000ffffull;  // 0x2b user data
  gdt[6] = 0x00affb000000ffffull;  // 0x33 user code
  const uint64_t tss = KBASE + 0x8000, kstack = KBASE + 0xa000;
  gdt[8] = 0x67 | ((tss & 0xffffff) << 16) | (0x89ull << 40) | (((tss >> 24) & 0xff) << 56);
  gdt[9] = tss >> 32;
  for (int v = 0; v < 32; v++) {
    uint64_t h = KBASE + 0x4000 + v * 16;
    uint8_t* d = k + 0x7000 + v * 16;
    d[0] = h & 0xff, d[1] = (h >> 8) & 0xff, d[2] = 0x10, d[3] = 0;
    d[4] = 1;                                  // IST1
    d[5] = (v == 3 || v == 4) ? 0xee : 0x8e;   // int3/into allowed from ring 3
    d[6] = (h >> 16) & 0xff, d[7] = (h >> 24) & 0xff;
    memcpy(d + 8, (uint32_t[]){(uint32_t)(h >> 32), 0}, 8);
  }
  memcpy(k + 0x8000 + 4, &kstack, 8);     // RSP0
  memcpy(k + 0x8000 + 0x24, &kstack, 8);  // IST1
  k[0x8000 + 0x66] = 104;                 // no I/O bitmap
  memcpy(u, kUserProgram, sizeof(kUserProgram));
  const uint64_t lstar = UBASE + 0x1000;
  static const uint8_t kTrampoline[] = {0x88, 0x04, 0x25, 0, 0, 0, 0,  // mov %al, MMIO_GVA
                                        0xff, 0xe1};                   // jmp *%rcx
  memcpy(u + 0x1000, kTrampoline, sizeof(kTrampoline));
  uint32_t mmio32 = (uint32_t)MMIO_GVA;
  memcpy(u + 0x1003, &mmio32, 4);

  uint64_t t0 = now_ns();
  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  struct kvm_run* run = mmap(NULL, (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0),
                             PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");
  static struct {
    struct kvm_cpuid2 h;
    struct kvm_cpuid_entry2 e[256];
  } cpuid;
  cpuid.h.nent = 256;
  if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid)) die("KVM_GET_SUPPORTED_CPUID");
  if (ioctl(vcpu, KVM_SET_CPUID2, &cpuid)) die("KVM_SET_CPUID2");
  struct kvm_sregs s;
  if (ioctl(vcpu, KVM_GET_SREGS, &s)) die("KVM_GET_SREGS");
  s.cr0 = 0x80050033;  // PE MP ET NE WP AM PG
  s.cr3 = KBASE;
  s.cr4 = (1 << 5) | (1 << 9) | (1 << 10) | (1 << 16) | (1 << 18);  // PAE OSFXSR OSXMMEXCPT FSGSBASE OSXSAVE
  s.efer = 0xd00;  // LME LMA NXE
  struct kvm_segment code = {.limit = 0xffffffff, .selector = 0x10, .type = 11, .present = 1, .s = 1, .l = 1, .g = 1};
  struct kvm_segment data = {.limit = 0xffffffff, .selector = 0x18, .type = 3, .present = 1, .db = 1, .s = 1, .g = 1};
  struct kvm_segment null = {.unusable = 1};
  s.cs = code, s.ss = data, s.ds = s.es = s.fs = s.gs = null;
  s.gdt.base = KBASE + 0x6000, s.gdt.limit = 0x4f;
  s.idt.base = KBASE + 0x7000, s.idt.limit = 32 * 16 - 1;
  s.tr = (struct kvm_segment){.base = tss, .limit = 0x67, .selector = 0x40, .type = 11, .present = 1};
  if (ioctl(vcpu, KVM_SET_SREGS, &s)) die("KVM_SET_SREGS");
  if (set_msr(vcpu, 0xc0000081, 0x0023001000000000ull) || set_msr(vcpu, 0xc0000082, lstar) ||
      set_msr(vcpu, 0xc0000084, 0x47700)) {
    die("KVM_SET_MSRS (STAR, LSTAR, SFMASK)");
  }
  printf("kvm_vcpu_setup %.1f\n", (double)(now_ns() - t0));

  // First entry: ring 0 at the resume code, its frame at the stack top.
  uint64_t* frame = (uint64_t*)(k + 0xa000 - 64);
  const uint64_t* exc = (const uint64_t*)(k + 0xa000 - 56);  // vector, error, rip, cs, ...
  uint64_t init[8] = {0, 0, 0, UBASE, 0x33, 0x202, UBASE + 0x200000, 0x2b};
  memcpy(frame, init, sizeof(init));
  run->kvm_valid_regs = KVM_SYNC_X86_REGS;
  struct kvm_regs* regs = &run->s.regs.regs;
  memset(regs, 0, sizeof(*regs));
  regs->rip = KBASE + 0x5000, regs->rsp = kstack - 64, regs->rflags = 2;
  regs->rbx = (uint64_t)iters, regs->rdi = UBASE + 0x400000, regs->r12 = TOUCH_PAGES;
  run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
  uint64_t* lat = malloc(sizeof(uint64_t) * (size_t)iters);
  long calls = 0;
  uint64_t phase1_start = 0, phase1_end = 0, phase2_start = 0, phase2_end = 0;
  for (;;) {
    uint64_t a = now_ns();
    int ret = ioctl(vcpu, KVM_RUN, 0);
    uint64_t b = now_ns();
    if (ret < 0) die("KVM_RUN");
    if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == MMIO_GPA && run->mmio.is_write) {
      // A guest syscall: answer it. The store completes on re-entry and the
      // trampoline returns to rcx.
      if (calls < iters) {
        if (calls == 0) phase1_start = a;
        lat[calls] = b - a;
        phase1_end = b;
      } else if (calls == iters) {
        phase2_start = b;
      } else {
        phase2_end = b;
      }
      calls++;
      regs->rax = RESULT;
      run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
      continue;
    }
    if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0x11 && exc[0] == 6 &&
        exc[2] == UBASE + 0x24 && calls == iters + 2) {
      break;  // the program's final ud2
    }
    fprintf(stderr, "kvm_floor: unexpected exit %u (port %#x) after %ld calls: vector %lu rip %#lx\n",
            run->exit_reason, run->exit_reason == KVM_EXIT_IO ? run->io.port : 0, calls,
            (unsigned long)exc[0], (unsigned long)exc[2]);
    return 1;
  }
  printf("getppid %.1f\n", (double)(phase1_end - phase1_start) / (double)iters);
  print_percentiles(lat, iters);  // sorts lat
  // Phase 2 ran between two syscall exits: take one exit (the median) off.
  const double exit_ns = (double)lat[iters / 2];
  double touch = (double)(phase2_end - phase2_start) - exit_ns;
  printf("touch_per_page %.1f\n", (touch > 0 ? touch : 0) / TOUCH_PAGES);
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2 || (strcmp(argv[1], "native") != 0 && strcmp(argv[1], "kvm") != 0)) {
    fprintf(stderr, "usage: kvm_floor native|kvm [ITERS]\n");
    return 2;
  }
  long iters = argc > 2 ? strtol(argv[2], NULL, 10) : 2000;
  if (iters < 10) iters = 10;
  setvbuf(stdout, NULL, _IOLBF, 0);
  return strcmp(argv[1], "kvm") == 0 ? run_kvm(iters) : run_native(iters);
}
