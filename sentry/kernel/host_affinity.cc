#include "sentry/kernel/host_affinity.h"

#include <errno.h>

#include <optional>

#include "platform/host_affinity.h"
#include "sentry/kernel/kernel.h"

namespace seedvisor::sentry {

long ApplyHostAffinity(Task& t) {
  std::optional<cpu_set_t> set;
  {
    absl::MutexLock l(&t.kernel().mu());
    set = t.affinity_;
  }
  if (!set || t.ctx_ == nullptr) return 0;  // never set: the host's default
  auto* pin = dynamic_cast<platform::HostAffinity*>(t.ctx_.get());
  if (pin == nullptr) return -ENOSYS;
  return pin->SetHostAffinity(*set);
}

}  // namespace seedvisor::sentry
