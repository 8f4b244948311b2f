#include "alloc/lock_free_stack.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace stackalloc {
namespace {

struct alignas(64) Node {
  std::atomic<Node*> next{nullptr};
  int value = 0;
  std::atomic<int> owners{0};  // Must never exceed 1.
  int holder = -1;  // Written plainly by whoever holds it: TSan sees two.
};

using Stack = LockFreeStack<Node, &Node::next>;

// Numbers the nodes 0, 1, ... and pushes them all.
void PushNumbered(Stack* s, std::vector<Node>* nodes) {
  for (size_t i = 0; i < nodes->size(); ++i) {
    (*nodes)[i].value = static_cast<int>(i);
    s->Push(&(*nodes)[i]);
  }
}

// Every value from 0 to n - 1 is in `values` exactly once.
void ExpectEachOnce(std::vector<int> values, int n) {
  std::sort(values.begin(), values.end());
  std::vector<int> want(n);
  for (int i = 0; i < n; ++i) want[i] = i;
  EXPECT_EQ(values, want);
}

TEST(LockFreeStackTest, LifoOrderAndPopAll) {
  Stack s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.Pop(), nullptr);
  Node a, b, c;
  s.Push(&a);
  s.Push(&b);
  s.Push(&c);
  EXPECT_FALSE(s.empty());
  EXPECT_EQ(s.Pop(), &c);
  EXPECT_EQ(s.Pop(), &b);
  s.Push(&c);
  Node* all = s.PopAll();
  EXPECT_TRUE(s.empty());
  ASSERT_EQ(all, &c);
  EXPECT_EQ(all->next.load(), &a);
  EXPECT_EQ(a.next.load(), nullptr);
  EXPECT_EQ(s.PopAll(), nullptr);
}

// The ABA interleaving, made deterministic: between a pop's read of top A
// (and A's next, B) and its CAS, another thread pops A, pops B and pushes A
// back. Without the tag the CAS would succeed and make B, which that other
// thread now owns, the top again.
struct AbaHooks;
using AbaStack = LockFreeStack<Node, &Node::next, AbaHooks>;
AbaStack* aba_stack = nullptr;
Node* aba_b_taken = nullptr;
struct AbaHooks {
  static void BeforePopCas() {
    AbaStack* s = aba_stack;
    if (s == nullptr) return;
    aba_stack = nullptr;  // Interfere once.
    Node* a = s->Pop();
    aba_b_taken = s->Pop();
    s->Push(a);
  }
};

TEST(LockFreeStackTest, TagDefeatsAba) {
  AbaStack s;
  Node a, b;
  s.Push(&b);
  s.Push(&a);
  aba_stack = &s;
  EXPECT_EQ(s.Pop(), &a);  // Retried after the interference: A again.
  EXPECT_EQ(aba_b_taken, &b);
  EXPECT_EQ(s.Pop(), nullptr) << "B was handed out twice";
}

// Threads pop and push the same few nodes as fast as they can, the pattern
// that breaks an untagged Treiber stack (ABA). Every node must be owned by at
// most one thread at a time, and all nodes must be back at the end.
TEST(LockFreeStackTest, ConcurrentPushPopKeepsEveryNodeExactlyOnce) {
  constexpr int kNodes = 8;
  constexpr int kThreads = 8;
  constexpr int kIters = 50000;
  Stack s;
  std::vector<Node> nodes(kNodes);
  PushNumbered(&s, &nodes);
  std::atomic<long> pops{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::vector<Node*> mine;
      for (int i = 0; i < kIters; ++i) {
        if (Node* n = s.Pop()) {
          ASSERT_EQ(n->owners.fetch_add(1), 0) << "node popped twice";
          pops.fetch_add(1, std::memory_order_relaxed);
          mine.push_back(n);
        }
        if (!mine.empty() && (i % 3 != 0 || mine.size() > 2)) {
          Node* n = mine.back();
          mine.pop_back();
          n->owners.fetch_sub(1);
          s.Push(n);
        }
      }
      for (Node* n : mine) {
        n->owners.fetch_sub(1);
        s.Push(n);
      }
    });
  }
  std::atomic<bool> done{false};
  std::thread drainer([&] {  // PopAll racing with the others.
    while (!done.load()) {
      Node* all = s.PopAll();
      std::vector<Node*> got;
      for (Node* n = all; n != nullptr; n = n->next.load()) got.push_back(n);
      for (Node* n : got) ASSERT_EQ(n->owners.fetch_add(1), 0);
      for (Node* n : got) {
        n->owners.fetch_sub(1);
        s.Push(n);
      }
    }
  });
  for (auto& t : threads) t.join();
  done.store(true);
  drainer.join();
  EXPECT_GT(pops.load(), 0);

  std::vector<int> values;
  while (Node* n = s.Pop()) values.push_back(n->value);
  ExpectEachOnce(values, kNodes);
}

// Sift hands over nodes one by one: those put back return in their old
// order, those taken are gone, and it stops where told.
TEST(LockFreeStackTest, SiftKeepsWhatItPutsBackInOrder) {
  Stack s;
  std::vector<Node> nodes(6);
  for (int i = 5; i >= 0; --i) {  // Top: 0, 1, ..., 5.
    nodes[i].value = i;
    s.Push(&nodes[i]);
  }
  std::vector<int> seen;
  // Takes the odd ones among the first four popped.
  EXPECT_EQ(s.Sift(4,
                   [&seen](Node* n) {
                     seen.push_back(n->value);
                     return n->value % 2 == 1 ? SiftAction::kTake
                                              : SiftAction::kPutBack;
                   }),
            4);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3}));
  // Takes the first at or above 4 and stops there: 5 stays.
  seen.clear();
  EXPECT_EQ(s.Sift(100,
                   [&seen](Node* n) {
                     seen.push_back(n->value);
                     return n->value >= 4 ? SiftAction::kTakeAndStop
                                          : SiftAction::kPutBack;
                   }),
            3);
  EXPECT_EQ(seen, (std::vector<int>{0, 2, 4}));
  std::vector<int> left;
  while (Node* n = s.Pop()) left.push_back(n->value);
  EXPECT_EQ(left, (std::vector<int>{0, 2, 5}));
  EXPECT_EQ(s.Sift(3, [](Node*) { return SiftAction::kTake; }), 0);
}

// Sifters that take a node now and then, beside threads that pop and push:
// every node ends exactly once in a sifter's hands or on the stack, and no
// node is held by two threads at once (each holder writes the node's plain
// `holder`: TSan reports two holders without a push and pop between them).
TEST(LockFreeStackTest, ConcurrentSiftsLoseAndDuplicateNothing) {
  constexpr int kNodes = 64;
  constexpr int kThreads = 4;
  Stack s;
  std::vector<Node> nodes(kNodes);
  PushNumbered(&s, &nodes);
  std::vector<std::vector<int>> taken(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        if (t % 2 == 0) {
          s.Sift(3, [&](Node* n) {
            EXPECT_EQ(n->owners.fetch_add(1), 0) << "node handed out twice";
            n->holder = t;
            n->owners.fetch_sub(1);
            if (n->value % 7 != (i + t) % 7 || i % 50 != 0) {
              return SiftAction::kPutBack;
            }
            taken[t].push_back(n->value);
            return SiftAction::kTake;
          });
        } else if (Node* n = s.Pop()) {
          EXPECT_EQ(n->owners.fetch_add(1), 0) << "node popped twice";
          n->holder = t;
          n->owners.fetch_sub(1);
          s.Push(n);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<int> all;
  for (const auto& t : taken) all.insert(all.end(), t.begin(), t.end());
  while (Node* n = s.Pop()) all.push_back(n->value);
  ExpectEachOnce(all, kNodes);
}

}  // namespace
}  // namespace stackalloc
