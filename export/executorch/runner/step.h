// One supervision step: the bundle's step.pte run by the ExecuTorch runtime (XNNPACK delegate).
//   (tokens [B,L], puzzle_emb [B,ndim] if the model has one, y, z [B,P+L,D])
//     -> y_next, z_next [B,P+L,D], logits [B,L,V], q_halt [B]
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "manifest.h"

namespace executorch::extension::module {
class Module;
}

namespace trm {

struct StepOutput {
  std::vector<float> y, z;     // [B, P+L, D]
  std::vector<float> logits;   // [B, L, V]
  std::vector<float> q_halt;   // [B]
};

class Step {
 public:
  // Loads the program, checks forward's inputs and outputs (count, dtypes, ranks, non-batch
  // dimensions) against the manifest and initialises the delegate. Null with *error if not.
  static std::unique_ptr<Step> load(const Manifest& manifest, std::string* error);
  ~Step();

  // One step over `batch` rows (1 <= batch <= largest_batch()); row-major inputs, puzzle_emb
  // null when the model has none. A fixed-batch model file is padded by repeating the last row.
  bool run(int64_t batch, const int64_t* tokens, const float* puzzle_emb, const float* y, const float* z,
           StepOutput* out, std::string* error);

  int64_t largest_batch() const { return largest_batch_; }

 private:
  Step() = default;
  bool run_exact(int64_t batch, const int64_t* tokens, const float* puzzle_emb, const float* y, const float* z,
                 StepOutput* out, std::string* error);

  std::unique_ptr<executorch::extension::module::Module> module_;
  Manifest manifest_;
  int64_t largest_batch_ = 1;
  std::vector<int32_t> tokens32_;    // for a model file taking int32 tokens
};

}  // namespace trm
