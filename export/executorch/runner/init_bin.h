// The initial states from init.bin: raw little-endian float32 arrays laid out as the manifest's
// "init_bin" says (written by trm_edge.export.bundle.write_init_bin); a puzzle_emb_table marked
// "dtype": "float16" (export --table-dtype float16) is IEEE half, widened to float32 on reading.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "manifest.h"

namespace trm {

struct InitState {
  std::vector<float> y_init, z_init;   // [D], or [P+L, D]
  std::vector<float> puzzle_table;     // [rows, ndim] row-major; empty when the bundle ships none
  int64_t table_rows = 0;
};

bool read_init_bin(const Manifest& m, InitState* out, std::string* error);

// y_init or z_init repeated to [P+L, D] (one row of the batch).
std::vector<float> broadcast_state(const std::vector<float>& init, int64_t positions, int64_t hidden);

}  // namespace trm
