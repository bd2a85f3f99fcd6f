#include "backend/cpu/thread_pool.h"

#include <algorithm>
#include <utility>

namespace peregrine::cpu {

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int w = 1; w < n_threads_; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_part(const Task& task, int worker) {
  const int64_t per = (task.n + n_threads_ - 1) / n_threads_;
  const int64_t begin = std::min<int64_t>(task.n, per * worker);
  const int64_t end = std::min<int64_t>(task.n, begin + per);
  if (begin >= end) return;
  // An exception must not escape a worker thread (terminate) nor leave the caller before the
  // other parts finished (they use its stack): keep the first one and rethrow it in run().
  try {
    task.call(task.ctx, begin, end, worker);
  } catch (...) {
    std::lock_guard lock(mutex_);
    if (!error_) error_ = std::current_exception();
  }
}

void ThreadPool::run(const Task& task) {
  if (n_threads_ == 1 || task.n < 2) {
    if (task.n > 0) task.call(task.ctx, 0, task.n, 0);
    return;
  }
  {
    std::lock_guard lock(mutex_);
    task_ = task;
    pending_ = n_threads_ - 1;
    ++generation_;
  }
  work_ready_.notify_all();
  run_part(task, 0);
  std::unique_lock lock(mutex_);
  work_done_.wait(lock, [this] { return pending_ == 0; });
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void ThreadPool::worker_loop(int worker) {
  uint64_t seen = 0;
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mutex_);
      work_ready_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      task = task_;
    }
    run_part(task, worker);
    {
      std::lock_guard lock(mutex_);
      if (--pending_ == 0) work_done_.notify_one();
    }
  }
}

}  // namespace peregrine::cpu
