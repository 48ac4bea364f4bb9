// The wheel ships libexecutorch_threadpool.so but not its header (extension/threadpool/threadpool.h),
// so the two functions used here are declared by hand, exactly as that header declares them
// (executorch 1.5: `ThreadPool* get_threadpool()`, `size_t ThreadPool::get_thread_count() const`,
// `bool ThreadPool::_unsafe_reset_threadpool(uint32_t)`). No object of the class is made here.
#include "threads.h"

#include <cstddef>
#include <cstdint>

namespace executorch::extension::threadpool {
class ThreadPool {
 public:
  size_t get_thread_count() const;
  bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

namespace trm {

void set_threads(int threads) {
  if (threads <= 0) return;
  auto* pool = executorch::extension::threadpool::get_threadpool();
  if (pool) pool->_unsafe_reset_threadpool(static_cast<uint32_t>(threads));
}

int thread_count() {
  auto* pool = executorch::extension::threadpool::get_threadpool();
  return pool ? static_cast<int>(pool->get_thread_count()) : 1;
}

}  // namespace trm
