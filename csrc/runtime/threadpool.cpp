#include "runtime/threadpool.h"

#include <chrono>
#include <stdexcept>
#include <string>

namespace ee {

namespace {
constexpr int kSpinIters = 20000;   // ~tens of microseconds of polling before sleeping
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
    generation_.fetch_add(1);
  }
  cv_work_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::set_active(int n) {
  n_active_.store(n < 1 ? 1 : (n > n_threads_ ? n_threads_ : n), std::memory_order_relaxed);
}

void ThreadPool::run_chunk(int id) {
  const int64_t b = n_ * id / job_active_, e = n_ * (id + 1) / job_active_;
  if (b >= e) return;
  try {
    InJob guard;
    tr_(ctx_, b, e, id);
  } catch (...) {
    std::lock_guard<std::mutex> lk(error_mu_);
    if (!error_) error_ = std::current_exception();
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
  {
    std::lock_guard<std::mutex> lk(mu_);
    tr_ = tr; ctx_ = ctx; n_ = n; job_active_ = act;
    pending_.store(n_threads_ - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_work_.notify_all();
  run_chunk(0);
  for (int i = 0; i < kSpinIters && pending_.load(std::memory_order_acquire) != 0; ++i) cpu_relax();
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::worker_loop(int id) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = generation_.load(std::memory_order_acquire);
    for (int i = 0; i < kSpinIters && g == seen; ++i) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_work_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load()) return;
    if (id < job_active_) run_chunk(id);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lk(mu_);
      cv_done_.notify_one();
    }
  }
}

}  // namespace ee
