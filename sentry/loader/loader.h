// The ELF loader: maps an executable (static, static-PIE, or dynamic with
// its PT_INTERP) into a fresh MM and builds the initial stack (argv, envp,
// auxv) as the kernel's load_elf_binary() and create_elf_tables() do.
//
//   SV_ASSIGN_OR_RETURN(Image img, LoadImage(mm, file, open_interp));
//   SV_ASSIGN_OR_RETURN(UserAddr sp, SetupStack(mm, img, argv, envp, execfn, creds));
#ifndef SEEDVISOR_SENTRY_LOADER_LOADER_H_
#define SEEDVISOR_SENTRY_LOADER_LOADER_H_

#include <elf.h>

#include <functional>
#include <string>
#include <vector>

#include "sentry/base/errno.h"
#include "sentry/base/usermem.h"
#include "sentry/kernel/credentials.h"
#include "sentry/mm/mm.h"
#include "sentry/vfs/file.h"

namespace seedvisor::sentry {

class Task;

// Where a position-independent executable goes (ELF_ET_DYN_BASE without ASLR).
inline constexpr uint64_t kPieBase = 0x555555554000;
inline constexpr uint64_t kStackSize = 8ull << 20;

// The checked headers of an ELF file, read before the point of no return.
struct ElfInfo {
  Elf64_Ehdr ehdr{};
  std::vector<Elf64_Phdr> phdrs;
  std::string interp;  // PT_INTERP path, empty if static
};

// Reads and validates the headers: ENOEXEC for non-ELF or foreign ELF.
Result<ElfInfo> ReadElf(Task& t, FileDescription& file);

struct Image {
  uint64_t entry = 0;        // where the first instruction runs (interp's if dynamic)
  uint64_t exe_entry = 0;    // AT_ENTRY
  uint64_t phdr = 0;         // AT_PHDR
  uint64_t phnum = 0;
  uint64_t interp_base = 0;  // AT_BASE
  uint64_t brk = 0;
  // load_elf_binary()'s mm->start_code/end_code (the executable segments'
  // lowest start and highest end of file data) and start_data/end_data
  // (the highest segment start and highest end of file data), biased.
  uint64_t start_code = 0, end_code = 0, start_data = 0, end_data = 0;
};

// Maps `exe` (and `interp`, if non-null) into `mm`.
Result<Image> LoadImage(MM& mm, FileDescription& exe, const ElfInfo& info,
                        FileDescription* interp, const ElfInfo* interp_info);

// Builds the stack: returns the initial rsp. Records argv/envp ranges in mm.
Result<UserAddr> SetupStack(MM& mm, const Image& img, const std::vector<std::string>& argv,
                            const std::vector<std::string>& envp, const std::string& execfn,
                            const Credentials& creds);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_LOADER_LOADER_H_
