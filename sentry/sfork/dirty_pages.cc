#include "sentry/sfork/dirty_pages.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>

namespace seedvisor::sentry {
namespace {

constexpr uint64_t kPlanMagic = 0x4e414c5059524944ULL;  // "DIRYPLAN"
constexpr uint32_t kRecordMagic = 0x59524944;           // "DIRY"
constexpr uint64_t kPageShift = 12;

// pagemap(5): the bits of an entry the anchor looks at.
constexpr uint64_t kPresent = 1ULL << 63;
constexpr uint64_t kFileOrSharedAnon = 1ULL << 61;
constexpr uint64_t kExclusive = 1ULL << 56;

// One anchor-to-seed message, one SOCK_SEQPACKET record: records of anchors
// reporting at once never interleave.
struct Record {
  uint32_t magic = kRecordMagic;
  uint32_t count = 0;  // pages[0..count)
  int32_t anchor = 0;  // who reports
  uint32_t end = 0;    // 1: the anchor's report is complete (no pages)
  uint64_t tag = 0;    // the seed's address space these pages are of
  uint64_t pages[(PIPE_BUF - 24) / 8];
};
static_assert(sizeof(Record) == PIPE_BUF);
constexpr size_t kRecordPages = sizeof(Record::pages) / sizeof(uint64_t);

// The anchor's: a fork of a multithreaded sentry may not allocate.
alignas(8) char g_plan[64 << 10];
size_t g_plan_len = 0;
Record g_record;

// "/proc/PID/<file>" into `out` (async-signal-safe).
void ProcPath(pid_t pid, std::string_view file, char (&out)[40]) {
  char digits[16];
  int n = 0;
  for (unsigned v = static_cast<unsigned>(pid); n == 0 || v != 0; v /= 10) {
    digits[n++] = static_cast<char>('0' + v % 10);
  }
  size_t i = 0;
  for (char c : std::string_view("/proc/")) out[i++] = c;
  while (n > 0) out[i++] = digits[--n];
  out[i++] = '/';
  for (char c : file) out[i++] = c;
  out[i] = '\0';
}

// Whether process `pid` is in process group `pgid` (proc(5): the fifth
// field of /proc/PID/stat, after the ")" that ends the command's name).
bool InGroup(pid_t pid, pid_t pgid) {
  char path[40];
  ProcPath(pid, "stat", path);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  const ssize_t n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n <= 0) return false;
  ssize_t at = n - 1;
  while (at >= 0 && buf[at] != ')') --at;
  // ") S PPID PGRP ": skip the state and the parent.
  int spaces = 0;
  for (++at; at < n && spaces < 3; ++at) spaces += buf[at] == ' ';
  int64_t group = 0;
  bool digits = false;
  for (; at < n && buf[at] >= '0' && buf[at] <= '9'; ++at, digits = true) {
    group = group * 10 + (buf[at] - '0');
  }
  return digits && group == pgid;
}

bool Flush(int fd) {
  const ssize_t n = write(fd, &g_record, sizeof(g_record));
  g_record.count = 0;
  return n == static_cast<ssize_t>(sizeof(g_record));
}

// Reports the pages of `t` that its process holds exclusively (of the
// first kMaxScannedPages of its ranges), at most `limit` of them, adding
// them to `*reported`; false when the socket took no more.
bool ScanOne(int report_fd, pid_t anchor, uint64_t tag, pid_t pid, const uint64_t* ranges,
             uint64_t nranges, size_t limit, size_t* reported) {
  char path[40];
  ProcPath(pid, "pagemap", path);
  const int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return true;  // gone (ptrace stubs die with their tracers): nothing to say
  // Still ours (the open holds that process's memory): a copy that died
  // and whose pid went to another process is never read.
  if (!InGroup(pid, anchor)) {
    close(fd);
    return true;
  }
  g_record.tag = tag;
  g_record.count = 0;
  size_t found = 0;
  uint64_t scanned = 0;
  uint64_t entries[512];
  auto more = [&] { return found < limit && scanned < kMaxScannedPages; };
  for (uint64_t r = 0; r < nranges && more(); ++r) {
    const uint64_t first = ranges[2 * r] >> kPageShift, last = ranges[2 * r + 1] >> kPageShift;
    for (uint64_t vpn = first; vpn < last && more();) {
      const uint64_t want = std::min<uint64_t>({last - vpn, 512, kMaxScannedPages - scanned});
      const ssize_t got = pread(fd, entries, want * 8, static_cast<off_t>(vpn * 8));
      if (got <= 0) break;
      const uint64_t n = static_cast<uint64_t>(got) / 8;
      scanned += n;
      for (uint64_t i = 0; i < n && found < limit; ++i) {
        const uint64_t e = entries[i];
        if ((e & kPresent) == 0 || (e & kExclusive) == 0 || (e & kFileOrSharedAnon) != 0) continue;
        g_record.pages[g_record.count++] = (vpn + i) << kPageShift;
        ++found;
        ++*reported;
        if (g_record.count == kRecordPages && !Flush(report_fd)) {
          close(fd);
          return false;
        }
      }
      vpn += n;
    }
  }
  close(fd);
  // Also when it found none: the seed then learns that this copy wrote nothing.
  return Flush(report_fd);
}

}  // namespace

std::string EncodeScanPlan(const std::vector<ScanTarget>& targets) {
  std::vector<uint64_t> w = {kPlanMagic, targets.size()};
  for (const ScanTarget& t : targets) {
    w.push_back(t.tag);
    w.push_back(static_cast<uint64_t>(t.pid));
    w.push_back(t.ranges.size());
    for (const auto& [start, end] : t.ranges) {
      w.push_back(start);
      w.push_back(end);
    }
  }
  if (w.size() * 8 > sizeof(g_plan)) return "";  // too many ranges: learn nothing
  return std::string(reinterpret_cast<const char*>(w.data()), w.size() * 8);
}

void AnchorReadPlan(int life_fd) {
  g_plan_len = 0;
  for (;;) {
    char drop[256];
    const bool room = g_plan_len < sizeof(g_plan);
    char* to = room ? g_plan + g_plan_len : drop;
    const size_t cap = room ? sizeof(g_plan) - g_plan_len : sizeof(drop);
    const ssize_t n = read(life_fd, to, cap);
    if (n == 0 || (n < 0 && errno != EINTR)) return;
    if (n > 0 && room) g_plan_len += static_cast<size_t>(n);
  }
}

void AnchorScanAndReport(int report_fd, pid_t anchor) {
  // SAFETY: g_plan is 8-aligned and holds g_plan_len bytes of u64 words
  // (EncodeScanPlan); every index below is checked against that length.
  const uint64_t* w = reinterpret_cast<const uint64_t*>(g_plan);
  const uint64_t words = g_plan_len / 8;
  if (report_fd < 0 || words < 2 || w[0] != kPlanMagic) return;
  g_record.magic = kRecordMagic;
  g_record.anchor = anchor;
  g_record.end = 0;
  uint64_t at = 2;
  size_t reported = 0;  // of kMaxReportedPages
  for (uint64_t t = 0; t < w[1]; ++t) {
    if (at + 3 > words) return;
    const uint64_t tag = w[at], pid = w[at + 1], nranges = w[at + 2];
    at += 3;
    if (nranges > (words - at) / 2) return;
    const size_t limit = std::min(kMaxLearnedPages, kMaxReportedPages - reported);
    if (!ScanOne(report_fd, anchor, tag, static_cast<pid_t>(pid), w + at, nranges, limit,
                 &reported)) {
      return;
    }
    at += 2 * nranges;
  }
  g_record.tag = 0;
  g_record.count = 0;
  g_record.end = 1;
  Flush(report_fd);
}

DirtyPageLog& DirtyPageLog::Get() {
  static DirtyPageLog* log = new DirtyPageLog;
  return *log;
}

int DirtyPageLog::report_fd() {
  if (write_fd_ < 0) {
    int p[2];
    // Non-blocking both ways: a seed that reads nothing never holds up an
    // anchor's end, and Drain never waits. A socket, not a pipe: a pipe
    // shared by a sentry and an anchor says that the anchor's group is that
    // sentry's (fri/host_memory.cc counts a fork's memory so), and every
    // anchor holds this one.
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, p) != 0) return -1;
    read_fd_ = p[0];
    write_fd_ = p[1];
  }
  return write_fd_;
}

DirtyPageLog::~DirtyPageLog() {
  if (read_fd_ >= 0) close(read_fd_);
  if (write_fd_ >= 0) close(write_fd_);
}

void DirtyPageLog::Expect(pid_t anchor) {
  partial_.erase(anchor);  // an earlier anchor's, whose pid this one got
  if (expected_.erase(anchor) != 0) {
    expected_order_.erase(std::find(expected_order_.begin(), expected_order_.end(), anchor));
  }
  if (expected_.size() >= kMaxExpected) {
    const pid_t oldest = expected_order_.front();
    expected_order_.pop_front();
    expected_.erase(oldest);
    partial_.erase(oldest);
  }
  expected_.insert(anchor);
  expected_order_.push_back(anchor);
}

void DirtyPageLog::Drain() {
  if (read_fd_ < 0) return;
  static Record buf[16];
  for (;;) {
    const ssize_t n = read(read_fd_, buf, sizeof(buf));
    if (n <= 0) return;
    // One record per read (SOCK_SEQPACKET).
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(Record); ++i) {
      const Record& r = buf[i];
      if (r.magic != kRecordMagic || r.count > kRecordPages || !expected_.contains(r.anchor)) {
        continue;
      }
      Partial& p = partial_[r.anchor];
      if (r.end == 0) {
        // The anchor keeps to the bounds; we do not rely on it.
        std::vector<uint64_t>& pages = p.pages[r.tag];
        const size_t room = kMaxLearnedPages - std::min(pages.size(), kMaxLearnedPages);
        const size_t take = std::min<size_t>({r.count, room, kMaxReportedPages - p.total});
        pages.insert(pages.end(), r.pages, r.pages + take);
        p.total += take;
        continue;
      }
      pages_ = std::move(p.pages);
      partial_.erase(r.anchor);
      expected_.erase(r.anchor);
      expected_order_.erase(
          std::find(expected_order_.begin(), expected_order_.end(), r.anchor));
    }
  }
}

const std::vector<uint64_t>* DirtyPageLog::Pages(uint64_t tag) const {
  auto it = pages_.find(tag);
  return it == pages_.end() ? nullptr : &it->second;
}

void DirtyPageLog::Prune(const std::set<uint64_t>& live) {
  std::erase_if(pages_, [&](const auto& e) { return !live.contains(e.first); });
}

void DirtyPageLog::ResetInForkChild() {
  if (read_fd_ >= 0) close(read_fd_);
  if (write_fd_ >= 0) close(write_fd_);
  read_fd_ = write_fd_ = -1;
  expected_.clear();
  expected_order_.clear();
  partial_.clear();
  pages_.clear();
}

size_t PrebreakPages(pid_t pid, const std::vector<uint64_t>& pages) {
  constexpr size_t kBatch = IOV_MAX;
  std::vector<char> bytes(kBatch);
  std::vector<iovec> remote(kBatch);
  size_t written = 0;
  for (size_t i = 0; i < pages.size();) {
    const size_t n = std::min(kBatch, pages.size() - i);
    for (size_t j = 0; j < n; ++j) remote[j] = {reinterpret_cast<void*>(pages[i + j]), 1};
    iovec local = {bytes.data(), n};
    // Each remote iovec is one byte: the count is the pages done, and the
    // first one that fails ends the call.
    const ssize_t got = process_vm_readv(pid, &local, 1, remote.data(), n, 0);
    if (got < 0 && errno == ESRCH) break;
    const size_t r = got > 0 ? static_cast<size_t>(got) : 0;
    size_t w = 0;
    if (r > 0) {
      iovec out = {bytes.data(), r};
      const ssize_t put = process_vm_writev(pid, &out, 1, remote.data(), r, 0);
      w = put > 0 ? static_cast<size_t>(put) : 0;
      written += w;
    }
    // Past what was written and the page that stopped the read or write.
    i += (r > 0 && w < r) ? w + 1 : r + (r < n ? 1 : 0);
  }
  return written;
}

}  // namespace seedvisor::sentry
