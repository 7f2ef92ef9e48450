#include "sentry/fs/proc/meminfo.h"


namespace seedvisor::sentry {

namespace {

// "Name:   123 kB" -> "Name:     0 kB": the number right-aligned where it was.
std::string Zeroed(std::string_view line) {
  size_t colon = line.find(':');
  size_t digits = line.find_first_of("0123456789", colon);
  if (colon == std::string_view::npos || digits == std::string_view::npos) {
    return std::string(line);
  }
  size_t end = line.find_first_not_of("0123456789", digits);
  if (end == std::string_view::npos) end = line.size();
  std::string out(line.substr(0, digits));
  out.append(end - digits - 1, ' ');
  out += '0';
  out.append(line.substr(end));
  return out;
}

}  // namespace

std::string MeminfoText(std::string_view host) {
  std::string out;
  out.reserve(host.size());
  while (!host.empty()) {
    size_t nl = host.find('\n');
    std::string_view line = host.substr(0, nl);
    host.remove_prefix(nl == std::string_view::npos ? host.size() : nl + 1);
    bool pool = false;
    for (std::string_view field :
         {"HugePages_Total:", "HugePages_Free:", "HugePages_Rsvd:", "HugePages_Surp:", "Hugetlb:"}) {
      pool = pool || line.starts_with(field);
    }
    out += pool ? Zeroed(line) : std::string(line);
    if (nl != std::string_view::npos) out += '\n';
  }
  return out;
}

}  // namespace seedvisor::sentry
