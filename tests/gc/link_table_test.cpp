// The disappearing links' flat table against std::unordered_map: the same
// entries after any sequence of insertions, lookups, erasures (by entry, by
// address, by predicate) and walks, with tombstones piling up and rehashes
// of both kinds (grow, and same size to drop tombstones).
#include "gc/link_table.hpp"

#include <cstdint>
#include <random>
#include <unordered_map>

#include "gtest/gtest.h"

namespace {

using mgc::internal::Link;
using mgc::internal::LinkTable;

struct Entry {
  std::uintptr_t obj;
  bool dead;
};
using Model = std::unordered_map<std::uintptr_t, Entry>;

void expect_same(LinkTable& t, const Model& m) {
  ASSERT_EQ(t.size(), m.size());
  std::size_t walked = 0;
  t.for_each([&](Link& l) {
    walked++;
    auto it = m.find(l.addr());
    ASSERT_NE(it, m.end()) << "entry " << l.addr() << " is not in the model";
    EXPECT_EQ(l.obj(), it->second.obj);
    EXPECT_EQ(l.dead(), it->second.dead);
  });
  EXPECT_EQ(walked, m.size());
  for (const auto& [addr, l] : m) {
    Link* found = t.find(addr);
    ASSERT_NE(found, nullptr) << "entry " << addr << " lost";
    EXPECT_EQ(found->obj(), l.obj);
    EXPECT_EQ(found->dead(), l.dead);
    EXPECT_EQ(found->addr(), addr);
  }
}

TEST(LinkTable, EmptyTableFindsNothing) {
  LinkTable t;
  EXPECT_EQ(t.find(0x1000), nullptr);
  EXPECT_FALSE(t.erase(0x1000));
  EXPECT_EQ(t.size(), 0u);
}

TEST(LinkTable, InsertFindEraseOne) {
  LinkTable t;
  auto [l, inserted] = t.try_emplace(0x1000, 0x2000);
  ASSERT_TRUE(inserted);
  EXPECT_EQ(l->obj(), 0x2000u);
  EXPECT_FALSE(l->dead());
  l->set_dead();
  EXPECT_TRUE(l->dead());
  EXPECT_EQ(l->addr(), 0x1000u) << "the flag does not change the address";
  EXPECT_EQ(t.find(0x1000), l) << "nor the lookup";
  EXPECT_EQ(t.find(0x1001), nullptr);
  auto [again, inserted_again] = t.try_emplace(0x1000, 0x3000);
  EXPECT_FALSE(inserted_again);
  EXPECT_EQ(again->obj(), 0x2000u) << "an existing entry is returned, unchanged";
  again->reset(0x3000);
  EXPECT_FALSE(l->dead());
  EXPECT_EQ(l->obj(), 0x3000u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_TRUE(t.erase(0x1000));
  EXPECT_EQ(t.find(0x1000), nullptr);
  EXPECT_EQ(t.size(), 0u);
}

// Keys that all hash near each other (one page of word addresses) and keys
// spread over the address space, mixed operations, checked against the
// model every few hundred steps.
TEST(LinkTable, RandomOperationsMatchAMap) {
  for (const std::uintptr_t spread : {std::uintptr_t{8}, std::uintptr_t{4096 * 8}}) {
    SCOPED_TRACE(spread);
    std::mt19937_64 rng(42 + spread);
    LinkTable t;
    Model m;
    auto key = [&] { return 0x10000 + spread * (rng() % 5000); };
    for (int step = 0; step < 200000; step++) {
      const unsigned op = static_cast<unsigned>(rng() % 10);
      const std::uintptr_t k = key();
      if (op < 5) {
        const auto obj = static_cast<std::uintptr_t>(rng());
        auto [e, inserted] = t.try_emplace(k, obj);
        auto [it, model_inserted] = m.try_emplace(k, Entry{obj, false});
        ASSERT_EQ(inserted, model_inserted);
        ASSERT_EQ(e->obj(), it->second.obj);
      } else if (op < 8) {
        ASSERT_EQ(t.erase(k), m.erase(k) == 1);
      } else if (op == 8) {
        Link* e = t.find(k);
        auto it = m.find(k);
        ASSERT_EQ(e != nullptr, it != m.end());
        if (e != nullptr) {
          if (e->dead()) {
            e->reset(e->obj());
          } else {
            e->set_dead();
          }
          it->second.dead = !it->second.dead;
        }
      } else if (step % 1000 == 9) {
        t.erase_if([](const Link& l) { return l.dead(); });
        std::erase_if(m, [](const auto& kv) { return kv.second.dead; });
      }
      if (step % 500 == 0) expect_same(t, m);
    }
    expect_same(t, m);
  }
}

// A table that stays small while its keys keep changing: tombstones must
// not grow it or slow it without end (a rehash of the same size drops
// them).
TEST(LinkTable, ChurnAtAFixedSizeDropsTombstones) {
  LinkTable t;
  Model m;
  std::uintptr_t next = 0x100000;
  for (int i = 0; i < 100; i++) {
    t.try_emplace(next, next);
    m.try_emplace(next, Entry{next, false});
    next += 8;
  }
  std::uintptr_t oldest = 0x100000;
  for (int i = 0; i < 1000000; i++) {
    ASSERT_TRUE(t.erase(oldest));
    m.erase(oldest);
    oldest += 8;
    t.try_emplace(next, next);
    m.try_emplace(next, Entry{next, false});
    next += 8;
  }
  expect_same(t, m);
  EXPECT_LE(t.capacity(), 512u) << "100 entries, a million erased: the tombstones grew the table";
}

}  // namespace
