// Locks that clang's thread-safety analysis (-Wthread-safety, --config=clang)
// checks: Mutex, its scoped MutexLock, and CondVar, which waits on a Mutex.
// std::mutex carries no capability attributes, so ABSL_GUARDED_BY naming one
// is checked by no compiler; these carry them. They are thin wrappers of
// std::mutex and std::condition_variable, not absl::Mutex, because
// ThreadSanitizer must see every hand-off, and Debian's Abseil is not built
// with TSan.
//
// Thread-safe, as the std types are. Not async-signal-safe.

#ifndef BASE_MUTEX_H_
#define BASE_MUTEX_H_

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"

namespace stackalloc {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }

  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable over a Mutex. Wait may return without a Signal (a
// spurious wake-up), so callers wait in a loop on their condition, which the
// analysis then sees read under the lock.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases *mu, blocks until woken, and takes *mu again before returning.
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> l(mu->mu_, std::adopt_lock);
    cv_.wait(l);
    l.release();  // Still held: the caller's.
  }

  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace stackalloc

#endif  // BASE_MUTEX_H_
