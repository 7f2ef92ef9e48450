#include "sentry/mm/gap_tree.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace seedvisor::sentry {

GapTree& GapTree::operator=(const GapTree& other) {
  if (this != &other) {
    root_ = Clone(other.root_.get());
    size_ = other.size_;
  }
  return *this;
}

// Unlinks iteratively: a degenerate subtree must not exhaust the stack.
GapTree::~GapTree() {
  std::vector<Ptr> pending;
  if (root_) pending.push_back(std::move(root_));
  while (!pending.empty()) {
    Ptr n = std::move(pending.back());
    pending.pop_back();
    if (n->left) pending.push_back(std::move(n->left));
    if (n->right) pending.push_back(std::move(n->right));
  }
}

GapTree::Ptr GapTree::Clone(const Node* n) {
  if (n == nullptr) return nullptr;
  auto c = std::make_unique<Node>();
  c->start = n->start;
  c->end = n->end;
  c->max_len = n->max_len;
  c->priority = n->priority;
  c->left = Clone(n->left.get());
  c->right = Clone(n->right.get());
  return c;
}

void GapTree::Update(Node* n) {
  n->max_len = n->end - n->start;
  if (n->left) n->max_len = std::max(n->max_len, n->left->max_len);
  if (n->right) n->max_len = std::max(n->max_len, n->right->max_len);
}

void GapTree::Split(Ptr n, uint64_t key, Ptr* less, Ptr* rest) {
  if (!n) {
    less->reset();
    rest->reset();
    return;
  }
  if (n->start < key) {
    Ptr r = std::move(n->right);
    Split(std::move(r), key, &n->right, rest);
    Update(n.get());
    *less = std::move(n);
  } else {
    Ptr l = std::move(n->left);
    Split(std::move(l), key, less, &n->left);
    Update(n.get());
    *rest = std::move(n);
  }
}

GapTree::Ptr GapTree::Join(Ptr a, Ptr b) {
  if (!a) return b;
  if (!b) return a;
  if (a->priority > b->priority) {
    a->right = Join(std::move(a->right), std::move(b));
    Update(a.get());
    return a;
  }
  b->left = Join(std::move(a), std::move(b->left));
  Update(b.get());
  return b;
}

uint32_t GapTree::NextPriority() {
  // xorshift64: priorities only need to look random to keep the depth
  // logarithmic.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  return static_cast<uint32_t>(rng_ >> 32);
}

void GapTree::Insert(uint64_t start, uint64_t end) {
  auto n = std::make_unique<Node>();
  n->start = start;
  n->end = end;
  n->max_len = end - start;
  n->priority = NextPriority();
  Ptr less, rest;
  Split(std::move(root_), start, &less, &rest);
  root_ = Join(Join(std::move(less), std::move(n)), std::move(rest));
  ++size_;
}

void GapTree::Erase(uint64_t start) {
  Ptr less, rest, mid, more;
  Split(std::move(root_), start, &less, &rest);
  Split(std::move(rest), start + 1, &mid, &more);
  if (mid) --size_;
  root_ = Join(std::move(less), std::move(more));
}

const GapTree::Node* GapTree::RightmostFit(const Node* n, uint64_t len, uint64_t bound) {
  // Only the path towards `bound` is walked, plus one descent into a
  // subtree wholly below it whose max_len promises a fit: O(depth).
  while (n != nullptr && n->max_len >= len) {
    if (n->start >= bound) {
      n = n->left.get();
      continue;
    }
    if (const Node* r = RightmostFit(n->right.get(), len, bound)) return r;
    if (n->end - n->start >= len) return n;
    n = n->left.get();
  }
  return nullptr;
}

std::optional<uint64_t> GapTree::HighestFit(uint64_t len, uint64_t below) const {
  // The gap with the greatest start below `below` is the only one `below`
  // can cut short; every gap before it ends at or before its start.
  const Node* last = nullptr;
  for (const Node* n = root_.get(); n != nullptr;) {
    if (n->start < below) {
      last = n;
      n = n->right.get();
    } else {
      n = n->left.get();
    }
  }
  if (last == nullptr) return std::nullopt;
  const uint64_t last_end = std::min(last->end, below);
  if (last_end - last->start >= len) return last_end - len;
  const Node* fit = RightmostFit(root_.get(), len, last->start);
  if (fit == nullptr) return std::nullopt;
  return fit->end - len;
}

}  // namespace seedvisor::sentry
