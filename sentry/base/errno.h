// Errors on the syscall path.
//
// A guest syscall fails with exactly one errno, and that errno must reach the
// guest unchanged (EPERM is not EACCES). `Errno` is that value; `Result<T>`
// carries either a T or an Errno. Nothing on this path uses absl::Status: a
// syscall error is not exceptional, it is the answer.
//
//   Result<size_t> n = file.Read(task, buf);
//   if (!n.ok()) return n.error();
#ifndef SEEDVISOR_SENTRY_BASE_ERRNO_H_
#define SEEDVISOR_SENTRY_BASE_ERRNO_H_

#include <cerrno>
#include <cstdint>
#include <utility>
#include <variant>

namespace seedvisor {

// Kernel-internal restart codes (include/linux/errno.h). They never reach the
// guest: the task's syscall exit path turns them into a restart or EINTR.
inline constexpr int kERESTARTSYS = 512;
inline constexpr int kERESTARTNOINTR = 513;
inline constexpr int kERESTARTNOHAND = 514;
// Restart through restart_syscall(2) with the task's restart block (a sleep
// goes on with the time left); EINTR if a handler runs.
inline constexpr int kERESTART_RESTARTBLOCK = 516;

class Errno {
 public:
  constexpr explicit Errno(int value) : value_(value) {}
  constexpr int value() const { return value_; }
  constexpr bool operator==(const Errno&) const = default;

 private:
  int value_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Errno err) : v_(err) {}                     // NOLINT: implicit by design
  bool ok() const { return std::holds_alternative<T>(v_); }
  Errno error() const { return std::get<Errno>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  T& operator*() { return value(); }

 private:
  std::variant<T, Errno> v_;
};

// Result<void>: success or an errno.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Errno err) : err_(err.value()) {}  // NOLINT: implicit by design
  bool ok() const { return err_ == 0; }
  Errno error() const { return Errno(err_); }

 private:
  int err_ = 0;
};

using Status = Result<void>;

}  // namespace seedvisor

#define SV_CONCAT_INNER(a, b) a##b
#define SV_CONCAT(a, b) SV_CONCAT_INNER(a, b)

// Returns the Errno of a failed Result<...> expression.
#define SV_TRY(expr)                           \
  do {                                         \
    auto sv_try_result_ = (expr);              \
    if (!sv_try_result_.ok()) return sv_try_result_.error(); \
  } while (0)

// Declares `lhs` from a Result<T> or returns its Errno.
#define SV_ASSIGN_OR_RETURN(lhs, expr) \
  SV_ASSIGN_OR_RETURN_IMPL(SV_CONCAT(sv_result_, __LINE__), lhs, expr)
#define SV_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.error();              \
  lhs = std::move(tmp).value()

#endif  // SEEDVISOR_SENTRY_BASE_ERRNO_H_
