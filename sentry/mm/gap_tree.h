// GapTree: the free ranges of an address space, for top-down mmap placement
// in O(log n) however many mappings there are.
//
//   GapTree gaps;
//   gaps.Insert(0x10000, 0x7fff0000);  // disjoint [start, end) ranges
//   std::optional<uint64_t> a = gaps.HighestFit(len, mmap_base);
//
// A treap ordered by start, each node knowing the largest gap in its
// subtree (as Linux's VMA tree keeps rb_subtree_gap), so the search skips
// every subtree whose gaps are all too small.
#ifndef SEEDVISOR_SENTRY_MM_GAP_TREE_H_
#define SEEDVISOR_SENTRY_MM_GAP_TREE_H_

#include <cstdint>
#include <memory>
#include <optional>

namespace seedvisor::sentry {

class GapTree {
 public:
  GapTree() = default;
  GapTree(const GapTree& other) : root_(Clone(other.root_.get())), size_(other.size_) {}
  GapTree& operator=(const GapTree& other);
  GapTree(GapTree&&) = default;
  GapTree& operator=(GapTree&&) = default;
  ~GapTree();

  // Adds [start, end), which must not overlap a gap already here.
  void Insert(uint64_t start, uint64_t end);
  // Removes the gap that starts at `start`, if any.
  void Erase(uint64_t start);
  size_t size() const { return size_; }
  // The highest address a such that [a, a + len) lies inside one gap and
  // a + len <= below; nullopt if there is none.
  std::optional<uint64_t> HighestFit(uint64_t len, uint64_t below) const;

 private:
  struct Node {
    uint64_t start, end;
    uint64_t max_len;  // the largest end - start in this subtree
    uint32_t priority;
    std::unique_ptr<Node> left, right;
  };
  using Ptr = std::unique_ptr<Node>;

  static Ptr Clone(const Node* n);
  static void Update(Node* n);
  // Splits `n` into the nodes with start < key and those with start >= key.
  static void Split(Ptr n, uint64_t key, Ptr* less, Ptr* rest);
  static Ptr Join(Ptr a, Ptr b);  // every start in a < every start in b
  // The node with the greatest start < bound whose gap holds `len` bytes.
  static const Node* RightmostFit(const Node* n, uint64_t len, uint64_t bound);
  uint32_t NextPriority();

  Ptr root_;
  size_t size_ = 0;
  uint64_t rng_ = 0x9e3779b97f4a7c15ull;
};

}  // namespace seedvisor::sentry

#endif  // SEEDVISOR_SENTRY_MM_GAP_TREE_H_
