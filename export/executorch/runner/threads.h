// The size of ExecuTorch's shared thread pool (XNNPACK and the optimized kernels run on it).
#pragma once

namespace trm {

// Resizes the pool; 0 keeps the default (one thread per performance core). Call it before any
// program is loaded: a delegate keeps the pool it was initialised with.
void set_threads(int threads);

int thread_count();

}  // namespace trm
