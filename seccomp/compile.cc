#include "seccomp/compile.h"

#include <seccomp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace seedvisor::seccomp {
namespace {

constexpr uint64_t kAll = ~uint64_t{0};

// One comparison as libseccomp takes it: (args[index] & mask) == value, or
// args[index] != (<, >) value; then mask is all ones.
struct Cmp {
  enum Op { kMaskedEq, kNe, kLt, kGt };
  int index = 0;
  uint64_t mask = kAll;
  uint64_t value = 0;
  Op op = kMaskedEq;
};

// A conjunction of comparisons, at most one per argument: libseccomp refuses
// two comparisons of the same argument in one rule (EINVAL).
using Clause = std::vector<Cmp>;

// Adds `c` to `clause`, merging it with the comparison already there for
// the same argument. nullopt: the clause can never match. An error: the two
// comparisons have no single libseccomp form.
absl::StatusOr<std::optional<Clause>> And(Clause clause, Cmp c) {
  c.value &= c.mask;
  auto it = std::find_if(clause.begin(), clause.end(),
                         [&](const Cmp& o) { return o.index == c.index; });
  if (it == clause.end()) {
    clause.push_back(c);
    return std::optional<Clause>(std::move(clause));
  }
  Cmp& o = *it;
  if (o.op == Cmp::kLt || o.op == Cmp::kGt || c.op == Cmp::kLt || c.op == Cmp::kGt) {
    // An order comparison beside an equality: the equality decides.
    const Cmp& eq = o.op == Cmp::kMaskedEq ? o : c;
    const Cmp& ord = o.op == Cmp::kMaskedEq ? c : o;
    if (eq.op == Cmp::kMaskedEq && eq.mask == kAll &&
        (ord.op == Cmp::kLt || ord.op == Cmp::kGt)) {
      const bool holds = ord.op == Cmp::kLt ? eq.value < ord.value : eq.value > ord.value;
      if (!holds) return std::optional<Clause>();
      o = eq;
      return std::optional<Clause>(std::move(clause));
    }
  } else if (o.op == Cmp::kMaskedEq && c.op == Cmp::kMaskedEq) {
    if (((o.value ^ c.value) & o.mask & c.mask) != 0) return std::optional<Clause>();
    o.value = o.value | c.value;
    o.mask = o.mask | c.mask;
    return std::optional<Clause>(std::move(clause));
  } else if (o.op == Cmp::kNe && c.op == Cmp::kNe) {
    if (o.value == c.value) return std::optional<Clause>(std::move(clause));
  } else {
    const Cmp& eq = o.op == Cmp::kNe ? c : o;
    const Cmp& ne = o.op == Cmp::kNe ? o : c;
    if ((ne.value & eq.mask) != eq.value) {  // the != always holds
      o = eq;
      return std::optional<Clause>(std::move(clause));
    }
    if (eq.mask == kAll) return std::optional<Clause>();  // == v and != v
  }
  return absl::InvalidArgumentError(
      absl::StrCat("two conditions on argument ", c.index,
                   " that libseccomp cannot compare in one rule"));
}

// The comparisons whose disjunction is "`m` does not hold".
std::vector<Cmp> Negate(const ArgMatch& m) {
  const uint64_t v = m.value & m.mask;
  if (m.mask == kAll) return {Cmp{m.index, kAll, v, Cmp::kNe}};
  // High bits only (the low ones free): `m` is a range [v, v | ~mask],
  // outside it is below or above.
  if (((~m.mask) & (~m.mask + 1)) == 0) {
    std::vector<Cmp> out;
    if (v != 0) out.push_back(Cmp{m.index, kAll, v, Cmp::kLt});
    if ((v | ~m.mask) != kAll) out.push_back(Cmp{m.index, kAll, v | ~m.mask, Cmp::kGt});
    return out;
  }
  std::vector<Cmp> out;
  for (int b = 0; b < 64; ++b) {
    const uint64_t bit = uint64_t{1} << b;
    if ((m.mask & bit) != 0) out.push_back(Cmp{m.index, bit, ~m.value & bit, Cmp::kMaskedEq});
  }
  return out;
}

std::string RuleName(const Policy& p, size_t i) {
  const Rule& r = p.rules[i];
  char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, r.nr);
  std::string s = absl::StrCat("policy \"", p.name, "\": rule ", i, " (",
                               name != nullptr ? name : absl::StrCat("syscall ", r.nr), ", \"",
                               r.why, "\")");
  free(name);
  return s;
}

// The clauses under which rule `i` decides: its own matchers, and none of
// the earlier rules of its syscall that decide otherwise.
absl::StatusOr<std::vector<Clause>> ClausesOf(const Policy& p, size_t i) {
  const Rule& r = p.rules[i];
  std::vector<Clause> clauses = {{}};
  for (const ArgMatch& m : r.args) {
    if (m.index < 0 || m.index > 5) {
      return absl::InvalidArgumentError(
          absl::StrCat(RuleName(p, i), ": argument index ", m.index, " is not 0..5"));
    }
    if (m.mask == 0) continue;  // matches anything
    auto c = And(clauses[0], Cmp{m.index, m.mask, m.value, Cmp::kMaskedEq});
    if (!c.ok()) return absl::InvalidArgumentError(absl::StrCat(RuleName(p, i), ": ", c.status().message()));
    if (!c->has_value()) return std::vector<Clause>{};  // contradictory: never matches
    clauses[0] = std::move(**c);
  }
  for (size_t j = 0; j < i; ++j) {
    const Rule& e = p.rules[j];
    if (e.nr != r.nr || e.action == r.action) continue;
    std::vector<Cmp> lits;
    for (const ArgMatch& m : e.args) {
      if (m.mask == 0) continue;
      std::vector<Cmp> n = Negate(m);
      lits.insert(lits.end(), n.begin(), n.end());
    }
    std::vector<Clause> next;
    for (const Clause& c : clauses) {
      for (const Cmp& l : lits) {
        auto a = And(c, l);
        if (!a.ok()) {
          return absl::InvalidArgumentError(absl::StrCat(
              RuleName(p, i), ": after rule ", j, " (which decides otherwise): ",
              a.status().message()));
        }
        if (a->has_value()) next.push_back(std::move(**a));
      }
    }
    clauses = std::move(next);  // empty: rule j shadows rule i
  }
  return clauses;
}

absl::Status Errno(const std::string& what, int rc) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(-rc)));
}

}  // namespace

absl::StatusOr<std::vector<sock_filter>> Compile(const Policy& p) {
  if (seccomp_arch_native() != SCMP_ARCH_X86_64) {
    return absl::FailedPreconditionError("seccomp policies are compiled for x86_64 only");
  }
  scmp_filter_ctx ctx = seccomp_init(p.default_action);
  if (ctx == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("policy \"", p.name, "\": default action 0x",
                                                   absl::Hex(p.default_action),
                                                   " is not a seccomp action"));
  }
  absl::Cleanup release = [ctx] { seccomp_release(ctx); };
  const std::string where = absl::StrCat("policy \"", p.name, "\"");
  // We install the program ourselves (Install(), or the stub's injected
  // seccomp call), after our own PR_SET_NO_NEW_PRIVS.
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); rc != 0) return Errno(where, rc);
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, p.foreign_abi_action); rc != 0) {
    return Errno(absl::StrCat(where, ": foreign ABI action 0x", absl::Hex(p.foreign_abi_action)),
                 rc);
  }
  // libseccomp sends x32 numbers (bit 30 set) to the bad-arch action except
  // -1, which a tracer uses to skip a call. -1 has bit 30 set too: keep it
  // with the foreign ABI action, as the table's ABI check means.
  if (p.foreign_abi_action != p.default_action) {
    if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_TSKIP, 1); rc != 0) return Errno(where, rc);
    if (int rc = seccomp_rule_add(ctx, p.foreign_abi_action, -1, 0); rc != 0) {
      return Errno(absl::StrCat(where, ": syscall -1"), rc);
    }
  }
  // The filter tests syscalls in the table's order (its hot path first):
  // libseccomp places higher priorities earlier.
  int priority = 255;
  std::map<int, bool> seen;
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const Rule& r = p.rules[i];
    if (r.nr < 0) {
      return absl::InvalidArgumentError(absl::StrCat(RuleName(p, i), ": negative syscall number"));
    }
    if (!seen[r.nr]) {
      seen[r.nr] = true;
      if (int rc = seccomp_syscall_priority(ctx, r.nr, static_cast<uint8_t>(std::max(priority--, 0)));
          rc != 0) {
        return Errno(RuleName(p, i), rc);
      }
    }
    absl::StatusOr<std::vector<Clause>> clauses = ClausesOf(p, i);
    if (!clauses.ok()) return clauses.status();
    // What the default does needs no rule (and libseccomp refuses one).
    if (r.action == p.default_action) continue;
    for (const Clause& c : *clauses) {
      std::vector<scmp_arg_cmp> cmps;
      for (const Cmp& x : c) {
        const unsigned arg = static_cast<unsigned>(x.index);
        switch (x.op) {
          case Cmp::kMaskedEq:
            cmps.push_back({arg, SCMP_CMP_MASKED_EQ, x.mask, x.value});
            break;
          case Cmp::kNe:
            cmps.push_back({arg, SCMP_CMP_NE, x.value, 0});
            break;
          case Cmp::kLt:
            cmps.push_back({arg, SCMP_CMP_LT, x.value, 0});
            break;
          case Cmp::kGt:
            cmps.push_back({arg, SCMP_CMP_GT, x.value, 0});
            break;
        }
      }
      // MASKED_EQ with an all-ones mask is EQ; say so (a shorter program).
      for (scmp_arg_cmp& x : cmps) {
        if (x.op == SCMP_CMP_MASKED_EQ && x.datum_a == kAll) x = {x.arg, SCMP_CMP_EQ, x.datum_b, 0};
      }
      if (int rc = seccomp_rule_add_exact_array(ctx, r.action, r.nr,
                                                static_cast<unsigned>(cmps.size()), cmps.data());
          rc != 0) {
        return Errno(RuleName(p, i), rc);
      }
    }
  }
  int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
  if (fd < 0) return Errno(absl::StrCat(where, ": memfd_create"), -errno);
  absl::Cleanup close_fd = [fd] { close(fd); };
  if (int rc = seccomp_export_bpf(ctx, fd); rc != 0) return Errno(absl::StrCat(where, ": seccomp_export_bpf"), rc);
  const off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0 || size % sizeof(sock_filter) != 0) {
    return absl::InternalError(absl::StrCat(where, ": libseccomp exported ", size, " bytes"));
  }
  std::vector<sock_filter> prog(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(fd, prog.data(), static_cast<size_t>(size), 0) != size) {
    return Errno(absl::StrCat(where, ": reading the exported program"), -errno);
  }
  if (int err = Check(prog); err != 0) {
    return absl::InternalError(absl::StrCat(where, ": libseccomp's program fails the kernel's checks (",
                                            prog.size(), " instructions)"));
  }
  return prog;
}

}  // namespace seedvisor::seccomp
