// Pre-broken copy-on-write: the guest pages that a seed's forks write, learned
// from finished forks and written ahead into each spare's stub copies, so
// that a fork's guest does not take those copy-on-write faults on its
// request's path (issue 10: a python L2 call took ~355 of them in its stub,
// 8-20 us each on this PVM host; most are the same pages every fork writes:
// Python's refcounts, its allocator's arenas, the stack).
//
// Learning: a fork's anchor (sfork.cc) outlives its forked sentry. When the
// sentry is gone (its life line reads end of file), the anchor reads
// /proc/PID/pagemap of the fork's stub copies, over the ranges the seed named
// in the life line when it made the spare, and reports every page that copy
// holds exclusively (present, mapped once, not a file's page: written by the
// fork, or new) to the seed through a socket, before it kills the group.
// The seed keeps the last complete report (of every address space it
// covers; the others' pages go), keyed by MM::id(), which no later address
// space of this sentry reuses (an address would be).
//
// Using: when the seed makes a spare, off the fork's path and outside its
// fork lock, it writes each learned page of each copy with the byte it holds
// (process_vm_readv, then process_vm_writev): the copy is parked and nobody
// runs its guest, so the guest sees the same memory, now its own.
//
//   SV: in the seed:
//   std::string plan = EncodeScanPlan({{tag, copy_pid, ranges}});  // down the life line
//   DirtyPageLog& log = DirtyPageLog::Get();
//   log.Expect(anchor);             // a running fork took that spare
//   log.Drain();                    // reports that came in
//   PrebreakPages(copy_pid, *log.Pages(tag));
//   SV: in the anchor, after fork(2) (async-signal-safe):
//   AnchorReadPlan(life_fd);        // until end of file
//   AnchorScanAndReport(report_fd, getpid());
#ifndef SEEDVISOR_SENTRY_SFORK_DIRTY_PAGES_H_
#define SEEDVISOR_SENTRY_SFORK_DIRTY_PAGES_H_

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace seedvisor::sentry {

// What a fork's guest can make the seed do through its report. The pages a
// report names are the ones the fork's guest wrote, which it chooses (and
// every fork of an L2 seed runs the same, possibly hostile, user code). So
// a report adds at most kMaxLearnedPages per address space (8 MiB) and
// kMaxReportedPages in all (16 MiB), however many processes the guest
// makes; the seed keeps one report. Each later spare of that seed then
// gets at most 16 MiB of its stub copies' pages made private (host memory,
// charged to the cgroup those copies are in; times the seed's pool of
// spares, ForkRequest's fork-spares, at most 32) and costs its spare thread
// the copy of as many pages (a few ms, off the fork's path and outside the
// fork lock). Nothing more: only pages of the seed's own private anonymous
// writable ranges are written ahead (the anchor scans only those, the seed
// filters again), each with the byte it holds (the guest sees no change),
// and only in spares of the seed whose fork reported. A fork that writes
// more than that pays for the rest itself.
inline constexpr size_t kMaxLearnedPages = 2048;
inline constexpr size_t kMaxReportedPages = 4096;
// At most this many pagemap entries are read per copy (4 GiB of address
// space, a few ms): a guest's huge MAP_NORESERVE mappings must not keep
// the anchor scanning, and a fork's processes alive, for seconds (review).
inline constexpr uint64_t kMaxScannedPages = uint64_t{1} << 20;

// One stub copy for the anchor to look at: the seed's address space it
// copies (`tag`, echoed back), its host pid, and the guest ranges to scan.
struct ScanTarget {
  uint64_t tag = 0;
  pid_t pid = -1;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // [start, end), page-aligned
};

// The bytes the seed writes down an anchor's life line (before the fork that
// takes the spare; the anchor reads them before the end of file).
std::string EncodeScanPlan(const std::vector<ScanTarget>& targets);

// ---- In the anchor: async-signal-safe, no allocation ----
// Reads the life line into a static buffer until end of file (what does
// not fit is read and dropped).
void AnchorReadPlan(int life_fd);
// Scans the plan's copies and writes records to `report_fd` (a
// non-blocking socket: a full one ends the report, which the seed then
// never counts), the last one marked as the end.
void AnchorScanAndReport(int report_fd, pid_t anchor);

// ---- In the seed ----
// The learned pages of this sentry's forks. One per process; used under the
// seed's fork lock only (sfork.h), and in a forked sentry only after
// ResetInForkChild.
class DirtyPageLog {
 public:
  // Anchors whose report never comes (their fork failed and was killed) are
  // forgotten, the oldest first, past this many.
  static constexpr size_t kMaxExpected = 64;

  static DirtyPageLog& Get();  // this process's
  DirtyPageLog() = default;
  ~DirtyPageLog();
  DirtyPageLog(const DirtyPageLog&) = delete;
  DirtyPageLog& operator=(const DirtyPageLog&) = delete;

  // The end for anchors to inherit and write to (made on first use); -1 if
  // the host refused a socket pair.
  int report_fd();
  // Reports of `anchor` count (its spare went to a fork that runs a guest);
  // whatever an earlier anchor of that pid sent is forgotten.
  void Expect(pid_t anchor);
  bool Expects(pid_t anchor) const { return expected_.contains(anchor); }
  // Reads every report that came in; a complete one from an expected anchor
  // replaces every learned page (bounded as the anchor bounds it: at most
  // kMaxLearnedPages per address space, kMaxReportedPages in all).
  void Drain();
  // The pages last learned for `tag`, or null.
  const std::vector<uint64_t>* Pages(uint64_t tag) const;
  // Forgets the pages of every address space not in `live` (the seed's
  // address spaces now: the others are gone).
  void Prune(const std::set<uint64_t>& live);
  // In a forked sentry: the seed's socket and pages are not ours (a fork that
  // becomes a seed learns its own).
  void ResetInForkChild();

 private:
  // What one anchor has sent so far, within the bounds.
  struct Partial {
    std::map<uint64_t, std::vector<uint64_t>> pages;
    size_t total = 0;
  };
  int read_fd_ = -1, write_fd_ = -1;
  std::set<pid_t> expected_;
  std::deque<pid_t> expected_order_;  // expected_, the oldest first
  std::map<pid_t, Partial> partial_;
  std::map<uint64_t, std::vector<uint64_t>> pages_;
};

// Writes each of `pages` (addresses in process `pid`, page-aligned) with the
// byte it holds: a copy-on-write page becomes the process's own, a missing
// one is allocated. Only for a process whose memory nobody writes
// meanwhile. Pages it cannot read or write are skipped. Returns how many
// were written.
size_t PrebreakPages(pid_t pid, const std::vector<uint64_t>& pages);

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_SFORK_DIRTY_PAGES_H_
