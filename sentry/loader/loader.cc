#include "sentry/loader/loader.h"

#include <sys/auxv.h>
#include <sys/random.h>

#include <algorithm>
#include <cstring>

namespace seedvisor::sentry {
namespace {

// AT_RSEQ_FEATURE_SIZE and AT_RSEQ_ALIGN (Linux 6.3; glibc 2.36's
// <elf.h> lacks them).
constexpr unsigned long kAtRseqFeatureSize = 27;
constexpr unsigned long kAtRseqAlign = 28;

int ProtOf(uint32_t pflags) {
  int prot = 0;
  if (pflags & PF_R) prot |= PROT_READ;
  if (pflags & PF_W) prot |= PROT_WRITE;
  if (pflags & PF_X) prot |= PROT_EXEC;
  return prot;
}

Status ReadFull(Task& t, FileDescription& f, void* buf, size_t len, int64_t off) {
  size_t done = 0;
  while (done < len) {
    Result<size_t> n = f.PRead(t, static_cast<char*>(buf) + done, len - done,
                               off + static_cast<int64_t>(done));
    if (!n.ok()) return n.error();
    if (*n == 0) return Errno(ENOEXEC);
    done += *n;
  }
  return {};
}

// Maps one ELF object at `bias`; returns the end of its highest segment.
Result<uint64_t> MapSegments(MM& mm, const ElfInfo& info, uint64_t bias, FileRef file_ref) {
  uint64_t max_end = 0;
  for (const Elf64_Phdr& ph : info.phdrs) {
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    int prot = ProtOf(ph.p_flags);
    uint64_t seg_start = bias + PageRoundDown(ph.p_vaddr);
    uint64_t file_end = bias + ph.p_vaddr + ph.p_filesz;
    uint64_t mem_end = bias + ph.p_vaddr + ph.p_memsz;
    uint64_t map_end = PageRoundUp(file_end);
    if (ph.p_filesz > 0) {
      MmapRequest req;
      req.addr = UserAddr(seg_start);
      req.length = map_end - seg_start;
      req.prot = prot;
      req.flags = MAP_PRIVATE | MAP_FIXED;
      req.file = file_ref;
      req.offset = PageRoundDown(ph.p_offset);
      SV_TRY(mm.Mmap(req).ok() ? Status() : Errno(ENOEXEC));
      // Zero the rest of the last file page: it is .bss, not file data.
      if (mem_end > file_end && map_end > file_end) {
        std::vector<char> zeros(map_end - file_end, 0);
        SV_TRY(mm.address_space().WriteForce(UserAddr(file_end), zeros.data(), zeros.size()));
      }
    } else {
      map_end = seg_start;
    }
    if (PageRoundUp(mem_end) > map_end) {
      MmapRequest req;
      req.addr = UserAddr(map_end);
      req.length = PageRoundUp(mem_end) - map_end;
      req.prot = prot;
      req.flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
      SV_TRY(mm.Mmap(req).ok() ? Status() : Errno(ENOMEM));
    }
    max_end = std::max(max_end, mem_end);
  }
  return max_end;
}

// The span [lowest vaddr, highest vaddr end) of the PT_LOAD segments.
std::pair<uint64_t, uint64_t> LoadSpan(const ElfInfo& info) {
  uint64_t lo = ~uint64_t{0}, hi = 0;
  for (const Elf64_Phdr& ph : info.phdrs) {
    if (ph.p_type != PT_LOAD) continue;
    lo = std::min(lo, PageRoundDown(ph.p_vaddr));
    hi = std::max(hi, PageRoundUp(ph.p_vaddr + ph.p_memsz));
  }
  return {lo, hi};
}

// A bias for a position-independent object: reserve its whole span first so
// the segments keep their relative layout.
Result<uint64_t> ChooseBias(MM& mm, const ElfInfo& info, uint64_t hint) {
  auto [lo, hi] = LoadSpan(info);
  MmapRequest req;
  req.addr = UserAddr(hint);
  req.length = hi - lo;
  req.prot = PROT_NONE;
  req.flags = MAP_PRIVATE | MAP_ANONYMOUS;
  SV_ASSIGN_OR_RETURN(UserAddr base, mm.Mmap(req));
  SV_TRY(mm.Munmap(base, hi - lo));
  return base.value() - lo;
}

}  // namespace

Result<ElfInfo> ReadElf(Task& t, FileDescription& file) {
  ElfInfo info;
  SV_TRY(ReadFull(t, file, &info.ehdr, sizeof(info.ehdr), 0));
  const Elf64_Ehdr& e = info.ehdr;
  if (std::memcmp(e.e_ident, ELFMAG, SELFMAG) != 0 || e.e_ident[EI_CLASS] != ELFCLASS64 ||
      e.e_ident[EI_DATA] != ELFDATA2LSB || e.e_machine != EM_X86_64 ||
      (e.e_type != ET_EXEC && e.e_type != ET_DYN) || e.e_phentsize != sizeof(Elf64_Phdr) ||
      e.e_phnum == 0 || e.e_phnum > 128) {
    return Errno(ENOEXEC);
  }
  info.phdrs.resize(e.e_phnum);
  SV_TRY(ReadFull(t, file, info.phdrs.data(), e.e_phnum * sizeof(Elf64_Phdr),
                  static_cast<int64_t>(e.e_phoff)));
  for (const Elf64_Phdr& ph : info.phdrs) {
    if (ph.p_type == PT_INTERP) {
      if (ph.p_filesz < 2 || ph.p_filesz > 4096) return Errno(ENOEXEC);
      std::string s(ph.p_filesz, '\0');
      SV_TRY(ReadFull(t, file, s.data(), s.size(), static_cast<int64_t>(ph.p_offset)));
      info.interp = std::string(s.c_str());
    }
    if (ph.p_type == PT_LOAD && (ph.p_offset % kPageSize) != (ph.p_vaddr % kPageSize)) {
      return Errno(ENOEXEC);
    }
  }
  return info;
}

Result<Image> LoadImage(MM& mm, FileDescription& exe, const ElfInfo& info,
                        FileDescription* interp, const ElfInfo* interp_info) {
  Image img;
  uint64_t bias = 0;
  if (info.ehdr.e_type == ET_DYN) {
    SV_ASSIGN_OR_RETURN(bias, ChooseBias(mm, info, kPieBase));
  }
  SV_ASSIGN_OR_RETURN(uint64_t end,
                      MapSegments(mm, info, bias, exe.shared_from_this()));
  img.brk = PageRoundUp(end);
  img.exe_entry = bias + info.ehdr.e_entry;
  img.entry = img.exe_entry;
  img.phnum = info.ehdr.e_phnum;
  // AT_PHDR: PT_PHDR if present, else the headers inside the first segment.
  for (const Elf64_Phdr& ph : info.phdrs) {
    if (ph.p_type == PT_PHDR) img.phdr = bias + ph.p_vaddr;
  }
  if (img.phdr == 0) {
    for (const Elf64_Phdr& ph : info.phdrs) {
      if (ph.p_type == PT_LOAD && ph.p_offset <= info.ehdr.e_phoff &&
          info.ehdr.e_phoff < ph.p_offset + ph.p_filesz) {
        img.phdr = bias + ph.p_vaddr + (info.ehdr.e_phoff - ph.p_offset);
        break;
      }
    }
  }
  if (interp != nullptr) {
    SV_ASSIGN_OR_RETURN(uint64_t ibias, ChooseBias(mm, *interp_info, 0));
    SV_TRY(MapSegments(mm, *interp_info, ibias, interp->shared_from_this()).ok()
               ? Status()
               : Errno(ENOEXEC));
    img.interp_base = ibias + LoadSpan(*interp_info).first;
    img.entry = ibias + interp_info->ehdr.e_entry;
  }
  // load_elf_binary()'s start_data/end_data: the highest segment start and
  // the highest end of file data; what RLIMIT_DATA counts besides the heap.
  uint64_t start_data = 0, end_data = 0, start_code = ~uint64_t{0}, end_code = 0;
  for (const Elf64_Phdr& ph : info.phdrs) {
    if (ph.p_type != PT_LOAD) continue;
    start_data = std::max(start_data, ph.p_vaddr);
    end_data = std::max(end_data, ph.p_vaddr + ph.p_filesz);
    if (ph.p_flags & PF_X) {
      start_code = std::min(start_code, ph.p_vaddr);
      end_code = std::max(end_code, ph.p_vaddr + ph.p_filesz);
    }
  }
  mm.SetBrkBase(UserAddr(img.brk), end_data > start_data ? end_data - start_data : 0);
  img.start_code = start_code + bias;
  img.end_code = end_code + bias;
  img.start_data = start_data + bias;
  img.end_data = end_data + bias;
  return img;
}

Result<UserAddr> SetupStack(MM& mm, const Image& img, const std::vector<std::string>& argv,
                            const std::vector<std::string>& envp, const std::string& execfn,
                            const Credentials& creds) {
  const uint64_t top = mm.address_space().UserTop().value();
  MmapRequest req;
  req.addr = UserAddr(top - kStackSize);
  req.length = kStackSize;
  req.prot = PROT_READ | PROT_WRITE;
  req.flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE;
  req.name = "[stack]";
  SV_TRY(mm.Mmap(req).ok() ? Status() : Errno(ENOMEM));

  // Strings at the top, then the vectors, built in a local image of the
  // stack and copied out in one go.
  uint64_t sp = top - 16;
  auto push_bytes = [&](const void* data, size_t len) -> Result<uint64_t> {
    sp -= len;
    SV_TRY(mm.CopyOut(UserAddr(sp), data, len));
    return sp;
  };
  SV_ASSIGN_OR_RETURN(uint64_t execfn_addr, push_bytes(execfn.c_str(), execfn.size() + 1));
  static const char kPlatform[] = "x86_64";
  SV_ASSIGN_OR_RETURN(uint64_t platform_addr, push_bytes(kPlatform, sizeof(kPlatform)));
  uint8_t random[16];
  if (getrandom(random, sizeof(random), 0) != sizeof(random)) return Errno(EIO);
  SV_ASSIGN_OR_RETURN(uint64_t random_addr, push_bytes(random, sizeof(random)));

  std::vector<uint64_t> env_ptrs, arg_ptrs;
  uint64_t env_end = sp;
  for (auto it = envp.rbegin(); it != envp.rend(); ++it) {
    SV_ASSIGN_OR_RETURN(uint64_t a, push_bytes(it->c_str(), it->size() + 1));
    env_ptrs.insert(env_ptrs.begin(), a);
  }
  uint64_t env_start = sp;
  uint64_t arg_end = sp;
  for (auto it = argv.rbegin(); it != argv.rend(); ++it) {
    SV_ASSIGN_OR_RETURN(uint64_t a, push_bytes(it->c_str(), it->size() + 1));
    arg_ptrs.insert(arg_ptrs.begin(), a);
  }
  uint64_t arg_start = sp;

  std::vector<uint64_t> auxv = {
      AT_SYSINFO_EHDR, mm.address_space().VdsoBase().value(),
      AT_MINSIGSTKSZ, getauxval(AT_MINSIGSTKSZ) ? getauxval(AT_MINSIGSTKSZ) : 2048,
      AT_HWCAP, getauxval(AT_HWCAP),
      AT_PAGESZ, kPageSize,
      AT_CLKTCK, 100,
      AT_PHDR, img.phdr,
      AT_PHENT, sizeof(Elf64_Phdr),
      AT_PHNUM, img.phnum,
      AT_BASE, img.interp_base,
      AT_FLAGS, 0,
      AT_ENTRY, img.exe_entry,
      AT_UID, creds.ruid,
      AT_EUID, creds.euid,
      AT_GID, creds.rgid,
      AT_EGID, creds.egid,
      AT_SECURE, 0,
      AT_RANDOM, random_addr,
      AT_HWCAP2, getauxval(AT_HWCAP2),
      AT_EXECFN, execfn_addr,
      AT_PLATFORM, platform_addr,
      AT_NULL, 0,
  };
  if (auxv[1] == 0) auxv.erase(auxv.begin(), auxv.begin() + 2);  // no vDSO on this platform
  // rseq(2) areas are registered with the host kernel (task_rseq.cc): its
  // feature size and alignment are the guest's.
  for (unsigned long type : {kAtRseqFeatureSize, kAtRseqAlign}) {
    if (const unsigned long v = getauxval(type); v != 0) {
      auxv.insert(auxv.end() - 2, {type, v});
    }
  }

  // argc, argv..., NULL, envp..., NULL, auxv — 16-byte aligned at argc.
  std::vector<uint64_t> vec;
  vec.push_back(argv.size());
  vec.insert(vec.end(), arg_ptrs.begin(), arg_ptrs.end());
  vec.push_back(0);
  vec.insert(vec.end(), env_ptrs.begin(), env_ptrs.end());
  vec.push_back(0);
  vec.insert(vec.end(), auxv.begin(), auxv.end());
  sp = (sp - vec.size() * 8) & ~uint64_t{15};
  SV_TRY(mm.CopyOut(UserAddr(sp), vec.data(), vec.size() * 8));

  MM::Layout layout = mm.layout();
  layout.arg_start = UserAddr(arg_start);
  layout.arg_end = UserAddr(arg_end);
  layout.env_start = UserAddr(env_start);
  layout.env_end = UserAddr(env_end);
  layout.stack_top = UserAddr(top);
  layout.start_stack = UserAddr(sp);
  layout.start_code = UserAddr(img.start_code);
  layout.end_code = UserAddr(img.end_code);
  layout.start_data = UserAddr(img.start_data);
  layout.end_data = UserAddr(img.end_data);
  layout.start_brk = UserAddr(img.brk);
  layout.auxv = auxv;
  mm.set_layout(std::move(layout));
  return UserAddr(sp);
}

}  // namespace seedvisor::sentry
