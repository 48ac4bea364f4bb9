// TrmRunner: a Tiny Recursive Model bundle (target executorch) run natively.
//
//   std::string error;
//   auto runner = trm::TrmRunner::open("bundles/sudoku-executorch-fp32", {}, &error);
//   trm::Solution s;
//   if (!runner || !runner->solve(tokens, {}, &s, &error)) { /* one line in error */ }
//   s.answer, s.steps, s.q_halt
//
// The loop is trm_edge/runtime/loop.py `solve` at batch 1: y, z start as y_init, z_init over all
// P+L positions; each step (tokens, puzzle_emb, y, z) -> (y, z, logits, q_halt); the answer is
// argmax(logits) of the last step run; q_halt halting stops after the first step with
// q_halt > log(t / (1 - t)), fixed halting runs max_steps. No exceptions cross this API.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arc.h"
#include "halt.h"
#include "init_bin.h"
#include "manifest.h"
#include "step.h"

namespace trm {

// What the loop reports after every step (an app redraws the grid from it).
struct StepReport {
  int step;                              // 1-based supervision step just run
  const std::vector<int64_t>& answer;    // [L] argmax tokens after this step
  float q_halt;                          // the halting logit; sigmoid(q_halt) is the halting probability
  double ms;                             // wall time of this step
  bool last;                             // the loop ends after this step (halted or max_steps)
};

// Called after every step; returning false stops the loop there (the Solution holds the steps run).
using StepCallback = std::function<bool(const StepReport&)>;

struct SolveOptions {
  std::optional<Halting> halting;     // default: the manifest's halting.policy
  std::optional<double> threshold;    // default: the manifest's halting.threshold
  std::optional<int> max_steps;       // default: the manifest's halting.max_steps
  int64_t puzzle_id = 0;              // row of the bundle's puzzle table (0: the blank puzzle id)
  std::vector<float> puzzle_emb;      // [ndim]: use this row instead of the table's
  StepCallback on_step;               // optional
};

struct Solution {
  std::vector<int64_t> answer;        // [L] argmax tokens of the last step
  int steps = 0;                      // supervision steps run
  std::vector<float> q_halt;          // q_halt logit after each step
  std::vector<double> ms;             // wall time of each step
  bool stopped = false;               // on_step returned false
};

// A puzzle solved with views (solve_views): the chosen answer and what each view did.
struct ViewSolution {
  std::vector<int64_t> answer;                  // [L] the chosen view's answer, mapped back
  int views = 1;                                // K
  int chosen = 0;                               // the view whose answer the puzzle took
  int total_steps = 0;                          // view-steps: all views' steps together
  int agreeing = 0;                             // finished views whose answer is the chosen one (views.same)
  std::vector<int> view_steps;                  // [K] steps each view ran (0: never launched)
  std::vector<float> view_q;                    // [K] each view's last q_halt logit (NaN: never launched)
  std::vector<bool> finished;                   // [K] halted or cut by the budget (these voted)
  std::vector<std::vector<int64_t>> view_answers;   // [K][L] each finished view's answer, mapped back
  Decision decision;                            // the policy that decided (decision_for)
};

struct ViewOptions {
  std::optional<int> views;           // default: the manifest's views.count
  std::optional<Decision> decision;   // default: TrmRunner::decision_for (views.recommended, views.policy)
};

class TrmRunner {
 public:
  struct Options {
    bool verify = true;   // check every file's sha256 against the manifest (types and sizes: always)
    int threads = 0;      // ExecuTorch thread pool size; 0 keeps the runtime's default
  };

  // Reads and checks the manifest (the rules 1-8 of export/README.md), the files' sizes and sha256,
  // init.bin and step.pte. Null with a one-line *error (printable UTF-8) when anything is wrong.
  static std::unique_ptr<TrmRunner> open(const std::string& bundle_dir, const Options& options, std::string* error);

  bool solve(const std::vector<int64_t>& tokens, const SolveOptions& options, Solution* out, std::string* error);

  // One puzzle as K views (the manifest's first K), one batch of the running views per step, each
  // halting on its own, decided by the policy: trm_edge/runtime/loop.py's views loop (views.h).
  // options.on_step is not called here.
  bool solve_views(const std::vector<int64_t>& tokens, const SolveOptions& options, const ViewOptions& views,
                   ViewSolution* out, std::string* error);

  // The decision policy solve_views runs for these options: views.decision where given; else one view
  // (K = 1) runs the plain vote; else K views asked for (views.views) run the policy of the manifest's
  // views.recommended row with the largest from_views <= K, or views.policy where no row qualifies;
  // with no K given, views.count views run views.policy. trm_edge/runtime/solver.py Solver.solve's
  // rule, read from the one table export writes into the manifest.
  Decision decision_for(const ViewOptions& views) const;

  // One ARC task through the bundle's views of task_id (manifest task_rows): every test input as the
  // task's first K views (options.views, default all listed), each the input under its augmentation
  // with its own table row as puzzle_emb, all test inputs' views as one batch of the running views per
  // step, each halting on its own; each finished view's answer cropped at the EOS, mapped back and
  // voted (count, then mean sigmoid(q_halt)): the top options.attempts. The decision policy (default
  // the full vote) may stop a test input's views early. trm_edge/runtime/arc.py solve_arc (arc.h).
  // task_json: the task's ARC JSON ({"train": [...], "test": [{"input": grid, "output"?: grid}]});
  // source names it in a message when it is no JSON (parse_arc_task).
  bool solve_arc(const std::string& task_json, const std::string& task_id, const ArcOptions& options, ArcResult* out,
                 std::string* error, const std::string& source = "the ARC task");
  bool solve_arc(const std::vector<ArcTest>& tests, const std::string& task_id, const ArcOptions& options,
                 ArcResult* out, std::string* error);

  // The puzzle-embedding row for a puzzle id from the bundle's table (empty without an embedding).
  bool puzzle_row(int64_t puzzle_id, std::vector<float>* row, std::string* error) const;

  const Manifest& manifest() const { return manifest_; }
  const InitState& init() const { return init_; }
  Step& step() { return *step_; }

 private:
  TrmRunner() = default;
  bool solve_checked(const std::vector<int64_t>& tokens, const SolveOptions& options, Solution* out, std::string* error);
  bool solve_views_checked(const std::vector<int64_t>& tokens, const SolveOptions& options, const ViewOptions& views,
                           ViewSolution* out, std::string* error);
  bool options_of(const std::vector<int64_t>& tokens, const SolveOptions& options, std::vector<float>* emb,
                  std::string* error);
  bool solve_arc_checked(const std::vector<ArcTest>& tests, const std::string& task_id, const ArcOptions& options,
                         ArcResult* out, std::string* error);

  // The views loop (trm_edge/runtime/loop.py `drive`) over B puzzles x K views: puzzle p's view v runs
  // seen[p * K + v] with the puzzle_emb row emb[p * K + v] (null: the model has none), and its answer
  // is answer(p, v, argmax tokens in the view's frame). The running views of all puzzles form one batch
  // per step (the kept ones first, then those launched, puzzle by puzzle), as Python's loop orders them.
  struct ViewRun {
    int puzzles = 1, views = 1;
    std::vector<std::vector<int64_t>> seen;
    std::vector<const float*> emb;
    std::function<std::vector<int64_t>(int p, int v, const std::vector<int64_t>& prediction)> answer;
  };
  bool run_views(const ViewRun& run, Halting halting, int max_steps, double threshold, const Decision& d,
                 std::vector<ViewSolution>* out, std::string* error);

  Manifest manifest_;
  InitState init_;
  std::unique_ptr<Step> step_;
  StepOutput out_;
};

}  // namespace trm
