#include "bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include <sys/resource.h>
#include <sys/utsname.h>

#include <nlohmann/json.hpp>

#include "threads.h"

namespace trm {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::ordered_json;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// numpy.percentile's default (linear interpolation between closest ranks).
double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

ordered_json number_or_null(bool known, double value) { return known ? ordered_json(value) : ordered_json(nullptr); }

}  // namespace

bool bench(TrmRunner& runner, const std::vector<std::vector<int64_t>>& puzzles, const SolveOptions& options,
           const BenchSettings& settings, std::string* json_line, std::string* error) {
  const Manifest& m = runner.manifest();
  const int64_t L = m.seq_len, N = m.positions(), D = m.hidden_size;

  // Steps at batch 1 from the initial state, on the first puzzle (or blank tokens).
  const std::vector<int64_t> tokens =
      puzzles.empty() ? std::vector<int64_t>(static_cast<size_t>(L), std::min<int64_t>(1, m.vocab_size - 1))
                      : puzzles.front();
  std::vector<float> emb;
  if (m.puzzle_emb_ndim > 0 && !runner.puzzle_row(options.puzzle_id, &emb, error)) return false;
  const std::vector<float> y = broadcast_state(runner.init().y_init, N, D);
  const std::vector<float> z = broadcast_state(runner.init().z_init, N, D);
  StepOutput out;
  std::vector<double> ms;
  for (int i = -2; i < settings.step_reps; ++i) {
    const auto t0 = Clock::now();
    if (!runner.step().run(1, tokens.data(), emb.empty() ? nullptr : emb.data(), y.data(), z.data(), &out, error)) {
      return false;
    }
    if (i >= 0) ms.push_back(ms_since(t0));
  }

  // Puzzles at batch 1: q_halt halting, then fixed halting.
  auto time_puzzles = [&](Halting halting, int count, double* ms_per_puzzle, double* mean_steps) {
    SolveOptions o = options;
    o.halting = halting;
    const size_t k = std::min(puzzles.size(), static_cast<size_t>(std::max(count, 0)));
    Solution s;
    double steps = 0;
    const auto t0 = Clock::now();
    for (size_t i = 0; i < k; ++i) {
      if (!runner.solve(puzzles[i], o, &s, error)) return false;
      steps += s.steps;
    }
    *ms_per_puzzle = k ? ms_since(t0) / static_cast<double>(k) : NAN;
    *mean_steps = k ? steps / static_cast<double>(k) : NAN;
    return true;
  };
  double ms_q = NAN, ms_fixed = NAN, mean_steps = NAN, unused = NAN;
  if (!time_puzzles(Halting::kQHalt, settings.latency_puzzles, &ms_q, &mean_steps) ||
      !time_puzzles(Halting::kFixed, settings.fixed_puzzles, &ms_fixed, &unused)) {
    return false;
  }

  struct utsname u {};
  const std::string device = uname(&u) == 0 ? u.machine : "";
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  std::error_code ec;
  const auto model_bytes = std::filesystem::file_size(std::filesystem::path(m.dir) / m.model_file, ec);

  ordered_json row;   // the fields of trm_edge.bench.Row, in its order
  row["target"] = m.target;
  row["precision"] = m.precision;
  row["status"] = "ok";
  row["reason"] = "";
  row["runner"] = "native";
  row["device"] = device;
  row["threads"] = thread_count();
  row["batch"] = 1;
  row["bundle"] = settings.bundle;
  row["artifact_mb"] = number_or_null(!ec, static_cast<double>(model_bytes) / (1 << 20));
  row["export_s"] = nullptr;
  row["parity_max_abs_logits"] = number_or_null(m.parity_max_abs_logits.has_value(), m.parity_max_abs_logits.value_or(0));
  row["accuracy"] = nullptr;
  row["mean_steps"] = number_or_null(!std::isnan(mean_steps), mean_steps);
  row["ms_step_p50"] = number_or_null(!ms.empty(), ms.empty() ? 0 : percentile(ms, 50));
  row["ms_step_p90"] = number_or_null(!ms.empty(), ms.empty() ? 0 : percentile(ms, 90));
  row["ms_step_batch_p50"] = nullptr;
  row["gflops_batch"] = nullptr;
  row["ms_puzzle_q_halt"] = number_or_null(!std::isnan(ms_q), ms_q);
  row["ms_puzzle_fixed"] = number_or_null(!std::isnan(ms_fixed), ms_fixed);
  row["puzzles_per_s"] = nullptr;
  row["peak_rss_mb"] = static_cast<double>(usage.ru_maxrss) / 1024.0;   // Linux: kilobytes
  row["gflops"] = nullptr;
  row["peak_fraction"] = nullptr;
  row["ms_puzzle_q_halt_batch"] = nullptr;   // batch rows and views rows: measured by trm-edge bench only
  row["views"] = nullptr;
  row["policy"] = "";
  row["views_accuracy"] = nullptr;
  row["view_steps"] = nullptr;
  row["ms_puzzle_views"] = nullptr;
  row["fixed_accuracy"] = nullptr;
  row["ms_puzzle_fixed_batch"] = nullptr;
  row["extra"] = {{"step_reps", ms.size()},
                  {"warmup_steps", 2},
                  {"latency_puzzles", std::min<size_t>(puzzles.size(), settings.latency_puzzles)},
                  {"fixed_puzzles", std::min<size_t>(puzzles.size(), settings.fixed_puzzles)},
                  {"threshold", options.threshold.value_or(m.threshold)}};
  *json_line = row.dump();
  return true;
}

}  // namespace trm
