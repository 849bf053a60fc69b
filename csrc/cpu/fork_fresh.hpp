// Process-wide state that survives fork(): only the forking thread lives on in the child, so
// the parent's object may hold a lock that no child thread will release, or wait on threads
// that do not exist there. The child therefore starts a fresh one; the parent's stays behind,
// unused. Never destroyed: detached threads and arrays freed during interpreter shutdown may
// use it after static destruction.
#pragma once

#include <atomic>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace fusedrnn::cpu {

// The process's T (default-constructed on first use); a fresh one in a child of fork().
template <typename T>
T& fork_fresh() {
  static std::atomic<T*> slot{nullptr};
  static const bool init = [] {
    slot.store(new T);
#if defined(__unix__) || defined(__APPLE__)
    pthread_atfork(nullptr, nullptr, [] { slot.store(new T); });
#endif
    return true;
  }();
  (void)init;
  return *slot.load();
}

}  // namespace fusedrnn::cpu
