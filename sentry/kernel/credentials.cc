#include "sentry/kernel/credentials.h"

#include <algorithm>

namespace seedvisor::sentry {

bool Credentials::InGroup(gid_t g) const {
  return g == fsgid || std::find(groups.begin(), groups.end(), g) != groups.end();
}

}  // namespace seedvisor::sentry
