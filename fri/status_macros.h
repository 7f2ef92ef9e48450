// RETURN_IF_ERROR / ASSIGN_OR_RETURN for absl::Status and absl::StatusOr
// (the syscall path has its own, SV_ASSIGN_OR_RETURN, for Errno results).
//
//   RETURN_IF_ERROR(sandboxes.Pause(id));
//   ASSIGN_OR_RETURN(v1::ForkResponse r, sandboxes.Fork(req));
#ifndef SEEDVISOR_FRI_STATUS_MACROS_H_
#define SEEDVISOR_FRI_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    if (::absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (0)

#define SEEDVISOR_CONCAT_INNER_(a, b) a##b
#define SEEDVISOR_CONCAT_(a, b) SEEDVISOR_CONCAT_INNER_(a, b)
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(SEEDVISOR_CONCAT_(_status_or_, __LINE__), lhs, expr)
#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(*tmp)

#endif  // SEEDVISOR_FRI_STATUS_MACROS_H_
