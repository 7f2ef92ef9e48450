// Compiles a policy table (seccomp/bpf.h) to a seccomp program with
// libseccomp: the rules become seccomp_rule_add() calls with argument
// comparisons, and seccomp_export_bpf() gives the program. It runs once, at
// build time (//seccomp:policy_gen writes the programs that the sentry and
// the systrap stub install); nothing compiles a filter at run time.
//
//   absl::StatusOr<std::vector<sock_filter>> prog = seccomp::Compile(SentryPolicy());
//
// A table is a first-match list; libseccomp's rules for one syscall have no
// order. Compile() keeps the table's meaning by giving each rule the negation
// of the earlier rules of the same syscall that decide differently, so the
// rules it hands to libseccomp never overlap with different actions.
#ifndef SEEDVISOR_SECCOMP_COMPILE_H_
#define SEEDVISOR_SECCOMP_COMPILE_H_

#include <linux/filter.h>

#include <vector>

#include "absl/status/statusor.h"
#include "seccomp/bpf.h"

namespace seedvisor::seccomp {

// The x86_64 program for `p`: syscalls of another ABI (i386, x32) get
// p.foreign_abi_action, the rules decide the rest, p.default_action what no
// rule matches. Deterministic (the golden tests rely on it). An error names
// the policy, the rule and what libseccomp cannot express.
absl::StatusOr<std::vector<sock_filter>> Compile(const Policy& p);

}  // namespace seedvisor::seccomp

#endif  // SEEDVISOR_SECCOMP_COMPILE_H_
