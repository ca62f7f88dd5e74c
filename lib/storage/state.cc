// State: a compact ordered map with a two-level index of key slices. The
// public operations and the cursor; the layout, the index and its invariants
// are in storage/state_rep.h, leaves and slices in storage/state_leaf.h.
#include "kvd/state.h"

#include <cassert>
#include <cstring>
#include <utility>

#include "storage/state_rep.h"

namespace kvd {

State::State() : rep_(std::make_unique<Rep>()) {}
State::~State() = default;
// A moved-from State is empty and usable.
State::State(State&& o) noexcept : rep_(std::exchange(o.rep_, std::make_unique<Rep>())) {}
State& State::operator=(State&& o) noexcept {
  if (this != &o) {
    std::swap(rep_, o.rep_);
    o.rep_->Clear();
  }
  return *this;
}

bool State::Put(std::string_view key, std::string_view value) {
  assert(key.size() <= UINT32_MAX && value.size() <= UINT32_MAX);
  Rep& r = *rep_;
  // Fast path: keys arriving in increasing order (snapshot load, sequential
  // writers) go straight to the end without a search.
  if (r.IsPastEnd(key)) {
    char* b = state_internal::NewBlock(key, value);
    r.Append(b, key);
    r.Account(b, true);
    ++r.count;
    return false;
  }
  bool found;
  auto [li, p] = r.Locate(key, &found);
  if (!found) {
    char* b = state_internal::NewBlock(key, value);
    r.InsertAt(li, p, b, key);
    r.Account(b, true);
    ++r.count;
    return false;
  }
  char*& slot = r.leaves[li]->items[p];
  char* old = slot;
  size_t need = state_internal::BlockSize(key.size(), value.size());
  size_t usable = malloc_usable_size(old);
  r.Account(old, false);
  if (need <= usable && usable <= need + need / 4 + 32) {
    // Same size class: rewrite in place. value may alias this block (memmove);
    // the key bytes stay where the old block had them until moved.
    Pair op = Decode(old);
    char hdr[10];
    char* he = state_internal::EncodeVarint(state_internal::EncodeVarint(hdr, op.klen),
                                            static_cast<uint32_t>(value.size()));
    size_t hlen = static_cast<size_t>(he - hdr);
    size_t old_hlen = static_cast<size_t>(op.key - old);
    if (hlen != old_hlen) {
      // Rare (value length crossed a varint boundary): build a fresh block.
      char* b = state_internal::NewBlock(key, value);
      std::free(old);
      slot = b;
    } else {
      if (!value.empty()) std::memmove(old + hlen + op.klen, value.data(), value.size());
      std::memcpy(old, hdr, hlen);
    }
  } else {
    char* b = state_internal::NewBlock(key, value);
    std::free(old);
    slot = b;
  }
  if (p == 0) r.heads[li] = slot;  // same key: its slice stands
  r.Account(slot, true);
  return true;
}

bool State::Del(std::string_view key) {
  Rep& r = *rep_;
  if (r.leaves.empty()) return false;
  bool found;
  auto [li, p] = r.Locate(key, &found);
  if (!found) return false;
  Leaf& leaf = *r.leaves[li];
  char* b = leaf.items[p];
  r.Account(b, false);
  std::free(b);
  leaf.Erase(p);
  --r.count;
  if (p == 0 && leaf.n > 0) r.SetHead(li);
  r.Rebalance(li);
  return true;
}

std::optional<std::string_view> State::Get(std::string_view key) const {
  if (rep_->leaves.empty()) return std::nullopt;
  bool found;
  auto [li, p] = rep_->Locate(key, &found);
  if (!found) return std::nullopt;
  return Decode(rep_->leaves[li]->items[p]).Value();
}

void State::Clear() { rep_->Clear(); }
size_t State::size() const { return rep_->count; }
uint64_t State::Digest() const { return rep_->digest; }
size_t State::DataBytes() const { return rep_->data_bytes; }

size_t State::MemoryBytes() const {
  const Rep& r = *rep_;
  return sizeof(Rep) + r.block_bytes +
         r.leaves.size() * (sizeof(Leaf) + state_internal::kMallocOverhead) +
         r.leaves.capacity() * sizeof(std::unique_ptr<Leaf>) + r.heads.capacity() * sizeof(char*) +
         r.head_slices.capacity() * sizeof(uint64_t);
}

size_t State::CountPrefix(std::string_view prefix) const {
  const Rep& r = *rep_;
  if (prefix.empty()) return r.count;
  bool found;
  auto [li, p] = r.Seek(prefix, &found);
  size_t n = 0;
  for (; li < r.leaves.size(); ++li, p = 0) {
    const Leaf& leaf = *r.leaves[li];
    // Keys in a leaf are sorted: if its shared prefix or its last key
    // matches, all from p on do, so whole leaves are counted without touching
    // (most of) their keys.
    if (leaf.Prefix().starts_with(prefix) || leaf.Key(leaf.n - 1).starts_with(prefix)) {
      n += leaf.n - p;
      continue;
    }
    for (; p < leaf.n && leaf.Key(p).starts_with(prefix); ++p) ++n;
    break;
  }
  return n;
}

struct State::Cursor::Impl {
  const Rep* rep;
  size_t leaf;
  uint32_t pos;
};

bool State::Cursor::Valid() const { return impl_ && impl_->leaf < impl_->rep->leaves.size(); }
std::string_view State::Cursor::key() const {
  return KeyOf(impl_->rep->leaves[impl_->leaf]->items[impl_->pos]);
}
std::string_view State::Cursor::value() const {
  return Decode(impl_->rep->leaves[impl_->leaf]->items[impl_->pos]).Value();
}
void State::Cursor::Next() {
  if (++impl_->pos == impl_->rep->leaves[impl_->leaf]->n) {
    ++impl_->leaf;
    impl_->pos = 0;
  }
}

State::Cursor State::Begin() const {
  Cursor c;
  c.impl_ = std::make_shared<Cursor::Impl>(Cursor::Impl{rep_.get(), 0, 0});
  return c;
}

State::Cursor State::LowerBound(std::string_view key) const {
  bool found;
  auto [li, p] = rep_->Seek(key, &found);
  Cursor c;
  c.impl_ = std::make_shared<Cursor::Impl>(Cursor::Impl{rep_.get(), li, p});
  return c;
}

State::Cursor State::UpperBound(std::string_view key) const {
  Cursor c = LowerBound(key);
  if (c.Valid() && c.key() == key) c.Next();
  return c;
}

}  // namespace kvd
