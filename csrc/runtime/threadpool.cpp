#include "runtime/threadpool.h"

#include <chrono>
#include <thread>
#include <stdexcept>
#include <string>

namespace ee {

namespace {
constexpr int kSpinIters = 20000;   // ~tens of microseconds of polling before sleeping
constexpr int kChunksPerWorker = 4;  // granularity of the dynamic split
thread_local bool t_in_job = false;   // set while this thread runs a chunk of some pool's job
struct InJob {
  InJob() { t_in_job = true; }
  ~InJob() { t_in_job = false; }
};
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || (defined(__arm__) && defined(__ARM_ARCH) && __ARM_ARCH >= 7)
  __asm__ __volatile__("yield");
#endif
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads), n_active_(n_threads) {
  if (n_threads < 1 || n_threads > 1024)
    throw std::invalid_argument("ThreadPool: n_threads must be in 1..1024, got " + std::to_string(n_threads));
  threads_.reserve(static_cast<size_t>(n_threads - 1));
  for (int i = 1; i < n_threads; ++i) threads_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
    generation_.fetch_add(2);   // stays even: workers wake, see stop_ and leave
  }
  cv_work_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::set_active(int n) {
  n_active_.store(n < 1 ? 1 : (n > n_threads_ ? n_threads_ : n), std::memory_order_relaxed);
}

void ThreadPool::run_chunks(int id) {
  for (;;) {
    const int c = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (c >= n_chunks_) return;
    const int64_t b = n_ * c / n_chunks_, e = n_ * (c + 1) / n_chunks_;
    if (b < e) {
      try {
        InJob guard;
        tr_(ctx_, b, e, id);
      } catch (...) {
        std::lock_guard<std::mutex> lk(error_mu_);
        if (!error_) error_ = std::current_exception();
      }
    }
    done_chunks_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::run(int64_t n, Trampoline tr, void* ctx) {
  if (t_in_job) throw std::logic_error("ThreadPool::parallel_for called from inside a parallel_for job");
  std::lock_guard<std::mutex> call(call_mu_);
  int act = n_active_.load(std::memory_order_relaxed);
  if (static_cast<int64_t>(act) > n) act = static_cast<int>(n);
  error_ = nullptr;
  if (act == 1) {   // no hand-off at all
    InJob guard;
    tr(ctx, 0, n, 0);
    return;
  }
  // close (odd), wait out workers still inside the previous job, write, open (even)
  generation_.fetch_add(1);
  for (int i = 0; joined_.load() != 0; ++i) i < kSpinIters ? cpu_relax() : std::this_thread::yield();
  const int64_t chunks = static_cast<int64_t>(act) * kChunksPerWorker;
  tr_ = tr; ctx_ = ctx; n_ = n; job_active_ = act;
  n_chunks_ = static_cast<int>(n < chunks ? n : chunks);
  next_chunk_.store(0, std::memory_order_relaxed);
  done_chunks_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(mu_);   // pairs with the sleepers' predicate check
    generation_.fetch_add(1);
  }
  cv_work_.notify_all();
  run_chunks(0);
  // only chunks a worker has started are left; yield after a while in case it was descheduled
  for (int i = 0; done_chunks_.load(std::memory_order_acquire) != n_chunks_; ++i)
    i < kSpinIters ? cpu_relax() : std::this_thread::yield();
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::worker_loop(int id) {
  uint32_t seen = generation_.load();
  for (;;) {
    uint32_t g = generation_.load(std::memory_order_acquire);
    for (int i = 0; i < kSpinIters && (g == seen || (g & 1)); ++i) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    if ((g == seen || (g & 1)) && !stop_.load()) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] {   // stop_ too: a thread that starts late may never see a new generation
        const uint32_t v = generation_.load(std::memory_order_acquire);
        return (v != seen && !(v & 1)) || stop_.load();
      });
      g = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load()) return;
    if (g == seen || (g & 1)) continue;   // woke on a close, or a job we already served
    joined_.fetch_add(1);
    if (generation_.load() == g) {   // still the job we saw open: its fields are stable until we leave
      seen = g;
      if (id < job_active_) run_chunks(id);
    }
    joined_.fetch_sub(1);
  }
}

}  // namespace ee
