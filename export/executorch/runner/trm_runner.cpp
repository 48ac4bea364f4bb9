#include "trm_runner.h"

#include <chrono>
#include <cmath>

#include "one_line.h"
#include "puzzle.h"
#include "runtime_log.h"
#include "threads.h"

namespace trm {
namespace {

// numpy's argmax: the first largest value; a NaN counts as the largest.
int64_t argmax(const float* v, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(v[i])) return i;
    if (v[i] > v[best]) best = i;
  }
  return best;
}

bool all_finite(const float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) return false;
  }
  return true;
}

}  // namespace

std::unique_ptr<TrmRunner> TrmRunner::open(const std::string& bundle_dir, const Options& options, std::string* error) {
  init_runtime();   // ExecuTorch's log goes into our errors from here on
  std::unique_ptr<TrmRunner> r(new TrmRunner());
  const bool ok = read_manifest(bundle_dir, &r->manifest_, error) &&      // rules 1, 2, 3, 6
                  verify_files(r->manifest_, options.verify, error) &&    // rules 4, 5 (sizes even without verify)
                  read_init_bin(r->manifest_, &r->init_, error);
  if (ok) {
    set_threads(options.threads);   // before the delegate takes the pool
    r->step_ = Step::load(r->manifest_, error);
  }
  if (!ok || !r->step_) {
    *error = one_line(*error);
    return nullptr;
  }
  return r;
}

bool TrmRunner::puzzle_row(int64_t puzzle_id, std::vector<float>* row, std::string* error) const {
  row->clear();
  const int64_t ndim = manifest_.puzzle_emb_ndim;
  if (ndim <= 0) return true;
  if (init_.puzzle_table.empty()) {
    *error = "this bundle ships no puzzle table (too large); pass the puzzle's embedding row";
    return false;
  }
  if (puzzle_id < 0 || puzzle_id >= init_.table_rows) {
    *error = "puzzle id " + std::to_string(puzzle_id) + " is outside the bundle's table (0.." +
             std::to_string(init_.table_rows - 1) + ")";
    return false;
  }
  row->assign(init_.puzzle_table.begin() + puzzle_id * ndim, init_.puzzle_table.begin() + (puzzle_id + 1) * ndim);
  return true;
}

bool TrmRunner::solve(const std::vector<int64_t>& tokens, const SolveOptions& options, Solution* out,
                      std::string* error) {
  if (solve_checked(tokens, options, out, error)) return true;
  *error = one_line(*error);
  return false;
}

bool TrmRunner::solve_checked(const std::vector<int64_t>& tokens, const SolveOptions& options, Solution* out,
                              std::string* error) {
  const Manifest& m = manifest_;
  const Halting halting = options.halting.value_or(m.halting);
  const double threshold = options.threshold.value_or(m.threshold);
  const int max_steps = options.max_steps.value_or(m.max_steps);
  if (!(threshold > 0.0 && threshold < 1.0)) {
    *error = "threshold is a probability strictly between 0 and 1, got " + std::to_string(threshold);
    return false;
  }
  if (max_steps < 1 || max_steps > kMaxSteps) {
    *error = "max_steps is " + std::to_string(max_steps) + ", give 1.." + std::to_string(kMaxSteps);
    return false;
  }
  if (!check_tokens(tokens, m, error)) return false;
  std::vector<float> emb;
  if (m.puzzle_emb_ndim > 0) {
    if (!options.puzzle_emb.empty()) {
      if (static_cast<int64_t>(options.puzzle_emb.size()) != m.puzzle_emb_ndim) {
        *error = "puzzle_emb has " + std::to_string(options.puzzle_emb.size()) + " values, the model takes " +
                 std::to_string(m.puzzle_emb_ndim);
        return false;
      }
      emb = options.puzzle_emb;
      if (!all_finite(emb.data(), static_cast<int64_t>(emb.size()))) {
        *error = "puzzle_emb holds NaN or infinite values";
        return false;
      }
    } else if (!puzzle_row(options.puzzle_id, &emb, error)) {
      return false;
    }
  }

  const int64_t L = m.seq_len, V = m.vocab_size, N = m.positions(), D = m.hidden_size;
  std::vector<float> y = broadcast_state(init_.y_init, N, D), z = broadcast_state(init_.z_init, N, D);
  const float limit = halt_limit(threshold);
  Solution s;
  s.answer.assign(static_cast<size_t>(L), 0);
  for (int step = 1; step <= max_steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!step_->run(1, tokens.data(), emb.empty() ? nullptr : emb.data(), y.data(), z.data(), &out_, error)) {
      return false;
    }
    if (!all_finite(out_.logits.data(), L * V) || !std::isfinite(out_.q_halt[0])) {
      *error = "the step produced NaN or infinite values at step " + std::to_string(step) +
               ": the model's weights or state are broken; re-export from a good checkpoint";
      return false;
    }
    for (int64_t i = 0; i < L; ++i) s.answer[i] = argmax(out_.logits.data() + i * V, V);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const float q = out_.q_halt[0];
    s.q_halt.push_back(q);
    s.ms.push_back(ms);
    s.steps = step;
    const bool last = step == max_steps || (halting == Halting::kQHalt && halts(q, limit));
    if (options.on_step && !options.on_step(StepReport{step, s.answer, q, ms, last}) && !last) {
      s.stopped = true;
      break;
    }
    if (last) break;
    y.swap(out_.y);
    z.swap(out_.z);
  }
  *out = std::move(s);
  return true;
}

}  // namespace trm
