#include "sentry/fs/sys/sys.h"

#include "absl/strings/str_cat.h"
#include "sentry/base/cpus.h"
#include "sentry/fs/synth/synth.h"

namespace seedvisor::sentry {
namespace {

constexpr long kSysfsMagic = 0x62656572;  // SYSFS_MAGIC

std::shared_ptr<SynthDir> Dir() {
  auto d = std::make_shared<SynthDir>(0755);
  d->set_fs_magic(kSysfsMagic);
  return d;
}

}  // namespace

std::string CpuListText(const cpu_set_t& set) {
  std::string out;
  for (int c = 0; c < CPU_SETSIZE;) {
    if (!CPU_ISSET(c, &set)) {
      ++c;
      continue;
    }
    int end = c;
    while (end + 1 < CPU_SETSIZE && CPU_ISSET(end + 1, &set)) ++end;
    if (!out.empty()) out += ',';
    absl::StrAppend(&out, c);
    if (end > c) absl::StrAppend(&out, "-", end);
    c = end + 1;
  }
  return out + "\n";
}

InodeRef NewSysFs() {
  const cpu_set_t& set = SandboxCpus().set;
  std::string list = CpuListText(set);
  auto cpu = Dir();
  // One list for all three: the sandbox's CPUs are all present, possible and
  // online (no hotplug inside it).
  for (const char* name : {"online", "possible", "present"}) {
    auto f = SynthFile::Text([list] { return list; });
    f->set_fs_magic(kSysfsMagic);
    cpu->Add(name, f);
  }
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpu->Add(absl::StrCat("cpu", c), Dir());
  }
  auto system = Dir();
  system->Add("cpu", cpu);
  auto devices = Dir();
  devices->Add("system", system);
  auto fs = Dir();
  auto cgroup = Dir();
  cgroup->set_seek(SynthSeek::kSeqFile);  // cgroup's kernfs dirs: EINVAL, not sysfs's
  fs->Add("cgroup", cgroup);
  auto cls = Dir();
  cls->Add("net", Dir());
  auto root = Dir();
  root->Add("devices", devices);
  root->Add("fs", fs);
  root->Add("class", cls);
  root->Add("kernel", Dir());
  root->Add("firmware", Dir());
  // lseek: sysfs attributes have i_size 4096, its directories 0.
  root->SetSubtreeSeek(SynthSeek::kSizeZero, SynthSeek::kSysfsPage);
  return root;
}

}  // namespace seedvisor::sentry
