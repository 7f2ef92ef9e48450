#include "sentry/ipc/ipc_namespace.h"

#include "absl/strings/str_cat.h"
#include "sentry/kernel/kernel.h"

namespace seedvisor::sentry {

IpcNamespace &Kernel::ipc() {
  std::call_once(ipc_once_, [this] { ipc_ = std::make_shared<IpcNamespace>(); });
  return *ipc_;
}

std::string IpcLimitText(const std::string &name) {
  if (name == "shmmax") return absl::StrCat(kShmMax, "\n");
  if (name == "shmall") return absl::StrCat(kShmAll, "\n");
  if (name == "shmmni") return absl::StrCat(kShmMni, "\n");
  if (name == "sem")
    return absl::StrCat(kSemMsl, "\t", kSemMns, "\t", kSemOpm, "\t", kSemMni, "\n");
  if (name == "msgmax") return absl::StrCat(kMsgMax, "\n");
  if (name == "msgmnb") return absl::StrCat(kMsgMnb, "\n");
  if (name == "msgmni") return absl::StrCat(kMsgMni, "\n");
  return "";
}

}  // namespace seedvisor::sentry
