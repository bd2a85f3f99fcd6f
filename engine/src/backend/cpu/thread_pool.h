// A small persistent worker pool for splitting one operation over contiguous index ranges.
// The caller's thread takes part, so ThreadPool(1) runs everything inline without threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace peregrine::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, worker) on size() contiguous parts of [0, n) and returns when every
  // part is done; an exception thrown by a part is rethrown here after all parts finished.
  // No allocation: the callable is passed by address, not wrapped.
  template <class F>
  void parallel_for(int64_t n, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run({[](void* ctx, int64_t b, int64_t e, int w) { (*static_cast<Fn*>(ctx))(b, e, w); }, &fn, n});
  }

 private:
  struct Task {
    void (*call)(void*, int64_t, int64_t, int) = nullptr;
    void* ctx = nullptr;
    int64_t n = 0;
  };
  void run(const Task& task);
  void run_part(const Task& task, int worker);
  void worker_loop(int worker);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  Task task_;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;  // first exception of the current run
};

}  // namespace peregrine::cpu
