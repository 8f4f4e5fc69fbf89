// Persistent worker pool. The calling thread is worker 0; workers 1..n-1 spin briefly after a job
// and then sleep on a condition variable, so back-to-back matvecs (one token = ~100 of them) do not
// pay a futex wake each, and an idle pool costs nothing. A job is cut into a few chunks per active
// worker that whoever is running claims from a shared counter: a worker the OS has descheduled
// (another process on the core: the voice stack, a compile) holds up nobody, the caller finishes
// its share. The caller waits only for chunks already started.
//
//   ee::ThreadPool pool(2);
//   pool.parallel_for(rows, [&](int64_t r0, int64_t r1, int worker) { /* rows [r0, r1) */ });
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace ee {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);   // n_threads >= 1 (throws std::invalid_argument otherwise)
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  int active() const { return n_active_.load(std::memory_order_relaxed); }
  // Use only the first n workers (clamped to 1..size): the governor lowers threads when hot.
  void set_active(int n);

  // Calls fn(begin, end, worker) on contiguous chunks covering [0, n) (a few per active worker,
  // claimed dynamically; empty chunks skipped); blocks until all are done. No heap allocation per call. Calls from
  // several threads are serialised; an exception thrown by fn is rethrown here (the first one).
  // Not reentrant: calling parallel_for from inside fn throws std::logic_error (it would deadlock).
  template <class F>
  void parallel_for(int64_t n, F&& fn) {
    if (n <= 0) return;
    using Fn = std::remove_reference_t<F>;
    run(n, [](void* ctx, int64_t b, int64_t e, int w) { (*static_cast<Fn*>(ctx))(b, e, w); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using Trampoline = void (*)(void*, int64_t, int64_t, int);
  void run(int64_t n, Trampoline tr, void* ctx);
  void worker_loop(int id);
  void run_chunks(int id);   // claim and run chunks of the open job until none are left

  int n_threads_;
  std::atomic<int> n_active_;
  std::vector<std::thread> threads_;
  std::mutex call_mu_;                 // one parallel_for at a time

  // Current job. generation_ is odd while the caller (re)writes the job, even while it is open.
  // A worker joins an open job by incrementing joined_ and re-reading generation_ (seq_cst both
  // sides): the caller closes the job, then waits for joined_ == 0 before touching the fields, so a
  // worker either sees the job closed or is waited for.
  Trampoline tr_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  int n_chunks_ = 0;
  int job_active_ = 1;
  std::atomic<uint32_t> generation_{0};   // 32-bit: armv6 has no 64-bit atomics; equality only, wrap is fine
  std::atomic<int> next_chunk_{0};
  std::atomic<int> done_chunks_{0};
  std::atomic<int> joined_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_work_;
  std::exception_ptr error_;
  std::mutex error_mu_;
};

}  // namespace ee
