// `seedsc spec [--bundle B] [-- CMD...]`: writes a default config.json (runc
// spec's) into the bundle directory; refuses to overwrite one.
#include <fcntl.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "runsc/cmd_common.h"
#include "runsc/oci/spec.h"

namespace seedvisor::runsc {

int CmdSpec(const GlobalConfig&, const std::vector<std::string>& args) {
  FlagSet fs("spec");
  std::string bundle = ".";
  fs.String("bundle", &bundle, "directory to write config.json in (default: cwd)");
  fs.Alias("b", "bundle");
  std::vector<std::string> pos;
  if (!ParseArgs(fs, args, 0, 1000, "spec [--bundle B] [-- command args...]", &pos)) return kExitUsage;
  std::string path = AbsPath(bundle) + "/config.json";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return Fail(absl::StrCat(path, ": ", std::strerror(errno)));
  std::string text = oci::DefaultSpecJson(pos);
  bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  close(fd);
  if (!ok) return Fail(absl::StrCat("writing ", path));
  return 0;
}

}  // namespace seedvisor::runsc
