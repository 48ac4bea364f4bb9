// --bench: ms per step at batch 1 and ms per puzzle, as one row of trm_edge/bench.py's schema
// (the `Row` dataclass, "trm-edge-bench/1"), runner "native".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trm_runner.h"

namespace trm {

struct BenchSettings {
  int step_reps = 100;          // timed steps after 2 warm-up steps
  int latency_puzzles = 20;     // puzzles solved with q_halt halting (ms_puzzle_q_halt, mean_steps)
  int fixed_puzzles = 3;        // puzzles solved with fixed halting (ms_puzzle_fixed)
  std::string bundle;           // the path as given, for the row
};

// The row as one JSON line. Puzzle timings are null without puzzles.
bool bench(TrmRunner& runner, const std::vector<std::vector<int64_t>>& puzzles, const SolveOptions& options,
           const BenchSettings& settings, std::string* json_line, std::string* error);

}  // namespace trm
