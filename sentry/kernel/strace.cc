#include "sentry/kernel/strace.h"

#include <fcntl.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "sentry/base/log.h"
#include "sentry/kernel/task.h"

namespace seedvisor::sentry {
namespace {

constexpr size_t kMaxShown = 64;  // bytes of a buffer shown

std::string Quote(const std::string& s, bool truncated) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          out += absl::StrFormat("\\x%02x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  if (truncated) out += "...";
  return out;
}

std::string Buffer(Task& t, uint64_t addr, uint64_t len) {
  if (addr == 0) return "NULL";
  size_t n = std::min<uint64_t>(len, kMaxShown);
  std::string data(n, '\0');
  if (!t.CopyIn(UserAddr(addr), data.data(), n).ok()) return absl::StrFormat("%#x", addr);
  return absl::StrFormat("%#x ", addr) + Quote(data, len > n);
}

std::string OpenFlags(uint64_t f) {
  static const struct { int bit; const char* name; } kFlags[] = {
      {O_CREAT, "O_CREAT"},         {O_EXCL, "O_EXCL"},         {O_NOCTTY, "O_NOCTTY"},
      {O_TRUNC, "O_TRUNC"},         {O_APPEND, "O_APPEND"},     {O_NONBLOCK, "O_NONBLOCK"},
      {O_DSYNC, "O_DSYNC"},         {O_DIRECT, "O_DIRECT"},     {O_LARGEFILE, "O_LARGEFILE"},
      {O_DIRECTORY, "O_DIRECTORY"}, {O_NOFOLLOW, "O_NOFOLLOW"}, {O_NOATIME, "O_NOATIME"},
      {O_CLOEXEC, "O_CLOEXEC"},     {O_PATH, "O_PATH"},
      // The kernel's __O_TMPFILE bit (glibc's includes O_DIRECTORY).
      {O_TMPFILE & ~O_DIRECTORY, "O_TMPFILE"},
  };
  std::string out;
  switch (f & O_ACCMODE) {
    case O_RDONLY: out = "O_RDONLY"; break;
    case O_WRONLY: out = "O_WRONLY"; break;
    default: out = "O_RDWR"; break;
  }
  for (const auto& fl : kFlags) {
    if (f & static_cast<uint64_t>(fl.bit)) absl::StrAppend(&out, "|", fl.name);
  }
  return out;
}

}  // namespace

std::string Strace::FormatArgs(Task& t, const SyscallEntry* e, const SyscallArgs& a) const {
  std::string out;
  const char* fmt = e != nullptr ? e->argfmt : "xxxxxx";
  for (int i = 0; fmt[i] != '\0' && i < 6; ++i) {
    if (i > 0) out += ", ";
    uint64_t v = a.raw[i];
    switch (fmt[i]) {
      case 'i':
        if (static_cast<int>(v) == AT_FDCWD && (i == 0) && e != nullptr &&
            std::strstr(e->name, "at") != nullptr) {
          out += "AT_FDCWD";
        } else {
          absl::StrAppend(&out, static_cast<int64_t>(static_cast<int>(v)));
        }
        break;
      case 'u': absl::StrAppend(&out, v); break;
      case 'o': absl::StrAppend(&out, absl::StrFormat("%#o", v)); break;
      case 'f': out += OpenFlags(v); break;
      case 's': {
        if (v == 0) {
          out += "NULL";
          break;
        }
        Result<std::string> s = t.CopyInString(UserAddr(v), 4096);
        out += s.ok() ? Quote(*s, false) : absl::StrFormat("%#x", v);
        break;
      }
      case 'B': out += Buffer(t, v, a.raw[i + 1]); break;
      default: absl::StrAppend(&out, absl::StrFormat("%#x", v)); break;
    }
  }
  return out;
}

void Strace::Enter(Task& t, const SyscallEntry* e, const SyscallArgs& a,
                   const std::string& args) const {
  Log::Write(absl::StrFormat("[%4d:%4d] %s E %s(%s)", t.tgid(), t.tid(), t.comm(),
                             e != nullptr ? e->name : absl::StrCat("syscall_", a.nr), args));
}

void Strace::Exit(Task& t, const SyscallEntry* e, const SyscallArgs& a, const std::string& args,
                  int64_t result, int64_t elapsed_ns) const {
  std::string res;
  if (result < 0 && result > -4096) {
    res = absl::StrFormat("%d (%s)", result, std::strerror(static_cast<int>(-result)));
  } else {
    res = absl::StrFormat("%d (%#x)", result, static_cast<uint64_t>(result));
  }
  // Buffers the call filled ('b') are shown after it returned.
  std::string shown = args;
  const char* fmt = e != nullptr ? e->argfmt : "";
  for (int i = 0; fmt[i] != '\0'; ++i) {
    if (fmt[i] == 'b' && result > 0) {
      shown = FormatArgs(t, e, a);
      std::string buf = Buffer(t, a.raw[i], static_cast<uint64_t>(result));
      // Replace the raw pointer with the data read.
      std::string ptr = absl::StrFormat("%#x", a.raw[i]);
      if (size_t pos = shown.find(ptr); pos != std::string::npos) shown.replace(pos, ptr.size(), buf);
      break;
    }
  }
  Log::Write(absl::StrFormat("[%4d:%4d] %s X %s(%s) = %s (%.1fus)", t.tgid(), t.tid(), t.comm(),
                             e != nullptr ? e->name : absl::StrCat("syscall_", a.nr), shown, res,
                             static_cast<double>(elapsed_ns) / 1000.0));
}

}  // namespace seedvisor::sentry
