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

// The options every solve checks, and the puzzle-embedding row they give.
bool TrmRunner::options_of(const std::vector<int64_t>& tokens, const SolveOptions& options, std::vector<float>* emb_out,
                           std::string* error) {
  const Manifest& m = manifest_;
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
  *emb_out = std::move(emb);
  return true;
}

bool TrmRunner::solve_checked(const std::vector<int64_t>& tokens, const SolveOptions& options, Solution* out,
                              std::string* error) {
  const Manifest& m = manifest_;
  const Halting halting = options.halting.value_or(m.halting);
  const double threshold = options.threshold.value_or(m.threshold);
  const int max_steps = options.max_steps.value_or(m.max_steps);
  std::vector<float> emb;
  if (!options_of(tokens, options, &emb, error)) return false;

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

Decision TrmRunner::decision_for(const ViewOptions& vo) const {
  const Manifest& m = manifest_;
  if (vo.decision) return *vo.decision;
  if (vo.views.value_or(m.views_count) < 2) return Decision{};   // one view: the single-view loop's
  if (!vo.views) return m.decision;                              // the manifest's default count: its policy
  const Manifest::Recommended* row = nullptr;
  for (const auto& r : m.recommended) {                          // increasing from_views (read_manifest)
    if (r.from_views <= *vo.views) row = &r;
  }
  return row ? row->decision : m.decision;
}

bool TrmRunner::solve_views(const std::vector<int64_t>& tokens, const SolveOptions& options, const ViewOptions& views,
                            ViewSolution* out, std::string* error) {
  if (solve_views_checked(tokens, options, views, out, error)) return true;
  *error = one_line(*error);
  return false;
}

bool TrmRunner::solve_views_checked(const std::vector<int64_t>& tokens, const SolveOptions& options,
                                    const ViewOptions& vo, ViewSolution* out, std::string* error) {
  const Manifest& m = manifest_;
  const Halting halting = options.halting.value_or(m.halting);
  const int max_steps = options.max_steps.value_or(m.max_steps);
  const Decision d = decision_for(vo);
  const int K = vo.views.value_or(m.views_count);
  if (K < 1 || K > static_cast<int>(m.views.size())) {
    *error = "this bundle lists " + std::to_string(m.views.size()) + " view" + (m.views.size() == 1 ? "" : "s") +
             ", not " + std::to_string(K) + "; ask for fewer or re-export with --views " + std::to_string(K);
    return false;
  }
  if (!known_policy(d.policy)) {
    *error = "policy is vote, best_q, consensus or best, got '" + d.policy + "'";
    return false;
  }
  if (d.verify) {
    *error = "the views policy verifies answers with a task's rule checker, which only the Python runtime has; "
             "run it without verify";
    return false;
  }
  std::vector<float> emb;
  if (!options_of(tokens, options, &emb, error)) return false;
  ViewRun run;
  run.views = K;
  for (int v = 0; v < K; ++v) {
    run.seen.push_back(apply_view(m.views[v], tokens));
    run.emb.push_back(emb.empty() ? nullptr : emb.data());
  }
  run.answer = [&](int, int v, const std::vector<int64_t>& prediction) { return invert_view(m.views[v], prediction); };
  std::vector<ViewSolution> solved;
  if (!run_views(run, halting, max_steps, options.threshold.value_or(m.threshold), d, &solved, error)) return false;
  *out = std::move(solved[0]);
  return true;
}

bool TrmRunner::run_views(const ViewRun& run, Halting halting, int max_steps, double threshold, const Decision& d,
                          std::vector<ViewSolution>* out, std::string* error) {
  const Manifest& m = manifest_;
  const int B = run.puzzles, K = run.views;
  const float limit = halt_limit(threshold);
  const int64_t L = m.seq_len, V = m.vocab_size, N = m.positions(), D = m.hidden_size, ND = N * D;
  const int64_t ndim = run.emb[0] ? m.puzzle_emb_ndim : 0;
  const std::vector<float> y0 = broadcast_state(init_.y_init, N, D), z0 = broadcast_state(init_.z_init, N, D);

  enum State { kWaiting, kRunning, kFinished, kStopped };
  std::vector<State> state(static_cast<size_t>(B) * K, kWaiting);   // [p * K + v]
  std::vector<ViewSolution> sols(B);
  std::vector<std::vector<int64_t>> keys(static_cast<size_t>(B) * K);   // [p * K + v]: what the decision compares
  for (ViewSolution& s : sols) {
    s.views = K;
    s.decision = d;
    s.view_steps.assign(K, 0);
    s.view_q.assign(K, std::nanf(""));
    s.finished.assign(K, false);
    s.view_answers.assign(K, {});
  }

  // the running views in batch order (kept ones first, then those just launched), with their state
  std::vector<int> rows;     // p * K + v
  std::vector<float> y, z;   // [rows, N, D]
  auto launch = [&](int p, int count) {
    for (int v = 0, n = 0; v < K && n < count; ++v) {
      if (state[p * K + v] != kWaiting) continue;
      state[p * K + v] = kRunning;
      rows.push_back(p * K + v);
      y.insert(y.end(), y0.begin(), y0.end());
      z.insert(z.end(), z0.begin(), z0.end());
      ++n;
    }
  };
  for (int p = 0; p < B; ++p) launch(p, d.first(K));   // puzzle by puzzle, as np.repeat / np.tile
  const int64_t chunk = std::max<int64_t>(1, step_->largest_batch());
  std::vector<int64_t> tok, pred(static_cast<size_t>(L));
  std::vector<float> pe, y_next, z_next, logits, q;
  while (!rows.empty()) {
    const int64_t n = static_cast<int64_t>(rows.size());
    tok.clear();
    pe.clear();
    for (int r : rows) {
      tok.insert(tok.end(), run.seen[r].begin(), run.seen[r].end());
      if (ndim) pe.insert(pe.end(), run.emb[r], run.emb[r] + ndim);
    }
    y_next.resize(n * ND);
    z_next.resize(n * ND);
    logits.resize(n * L * V);
    q.resize(n);
    for (int64_t a = 0; a < n; a += chunk) {     // at most the model file's largest batch per call
      const int64_t b = std::min(n, a + chunk);
      if (!step_->run(b - a, tok.data() + a * L, ndim ? pe.data() + a * ndim : nullptr, y.data() + a * ND,
                      z.data() + a * ND, &out_, error)) {
        return false;
      }
      std::copy(out_.y.begin(), out_.y.begin() + (b - a) * ND, y_next.begin() + a * ND);
      std::copy(out_.z.begin(), out_.z.begin() + (b - a) * ND, z_next.begin() + a * ND);
      std::copy(out_.logits.begin(), out_.logits.begin() + (b - a) * L * V, logits.begin() + a * L * V);
      std::copy(out_.q_halt.begin(), out_.q_halt.begin() + (b - a), q.begin() + a);
    }
    if (!all_finite(logits.data(), n * L * V) || !all_finite(q.data(), n)) {
      *error = "the step produced NaN or infinite values: the model's weights or state are broken; re-export from a "
               "good checkpoint";
      return false;
    }
    std::vector<bool> fin(n, false), decide(B, false);
    for (int64_t i = 0; i < n; ++i) {
      ViewSolution& s = sols[rows[i] / K];
      const int v = rows[i] % K;
      s.view_steps[v] += 1;
      s.view_q[v] = q[i];
      fin[i] = s.view_steps[v] >= max_steps || (halting == Halting::kQHalt && halts(q[i], limit));
    }
    std::vector<bool> at_budget(B, false);   // a puzzle at its budget: its running views are cut and vote as they are
    for (int p = 0; p < B && d.budget; ++p) {
      int64_t spent = 0;
      for (int v = 0; v < K; ++v) spent += sols[p].view_steps[v];
      at_budget[p] = spent >= *d.budget;
    }
    for (int64_t i = 0; i < n; ++i) {
      const int p = rows[i] / K, v = rows[i] % K;
      if (!(fin[i] || at_budget[p])) continue;
      fin[i] = true;
      decide[p] = true;
      state[rows[i]] = kFinished;
      for (int64_t c = 0; c < L; ++c) pred[c] = argmax(logits.data() + (i * L + c) * V, V);
      sols[p].view_answers[v] = run.answer(p, v, pred);
      keys[p * K + v] = answer_key(m.same, run.seen[p * K], sols[p].view_answers[v]);   // view 0: the puzzle as given
    }
    for (int p = 0; p < B; ++p) {   // the puzzles a view of which finished, in order (launches follow it)
      if (!decide[p]) continue;
      int running = 0, waiting = 0;
      Votes votes;
      for (int v = 0; v < K; ++v) {
        const State st = state[p * K + v];
        running += st == kRunning;
        waiting += st == kWaiting;
        if (st == kFinished) {
          votes.answers.push_back(&keys[p * K + v]);
          votes.q.push_back(sols[p].view_q[v]);
        }
      }
      if (at_budget[p]) waiting = 0;
      if (decision_done(d, votes, running, waiting)) {
        for (int v = 0; v < K; ++v) {
          State& st = state[p * K + v];
          if (st == kRunning) st = kStopped;
          if (at_budget[p] && st == kWaiting) st = kStopped;
        }
      } else if (running == 0 && waiting > 0) {
        launch(p, d.first(K));
      }
    }
    // compaction: the views still running keep their state, then the ones just launched (already appended)
    std::vector<int> kept;
    std::vector<float> ky, kz;
    for (int64_t i = 0; i < n; ++i) {
      if (state[rows[i]] != kRunning) continue;
      kept.push_back(rows[i]);
      ky.insert(ky.end(), y_next.begin() + i * ND, y_next.begin() + (i + 1) * ND);
      kz.insert(kz.end(), z_next.begin() + i * ND, z_next.begin() + (i + 1) * ND);
    }
    for (size_t i = static_cast<size_t>(n); i < rows.size(); ++i) {   // launched this step
      kept.push_back(rows[i]);
      ky.insert(ky.end(), y.begin() + static_cast<int64_t>(i) * ND, y.begin() + static_cast<int64_t>(i + 1) * ND);
      kz.insert(kz.end(), z.begin() + static_cast<int64_t>(i) * ND, z.begin() + static_cast<int64_t>(i + 1) * ND);
    }
    rows.swap(kept);
    y.swap(ky);
    z.swap(kz);
  }
  for (int p = 0; p < B; ++p) {
    ViewSolution& s = sols[p];
    Votes votes;
    std::vector<int> which;
    for (int v = 0; v < K; ++v) {
      s.finished[v] = state[p * K + v] == kFinished;
      s.total_steps += s.view_steps[v];
      if (!s.finished[v]) continue;
      votes.answers.push_back(&keys[p * K + v]);
      votes.q.push_back(s.view_q[v]);
      which.push_back(v);
    }
    if (which.empty()) {   // every puzzle ends with a finished view: its decision needs one
      *error = "internal error: puzzle " + std::to_string(p + 1) + " ended without a finished view";
      return false;
    }
    s.chosen = which[decision_choose(d, votes)];
    s.answer = s.view_answers[s.chosen];
    for (int v : which) s.agreeing += keys[p * K + v] == keys[p * K + s.chosen];
  }
  *out = std::move(sols);
  return true;
}

}  // namespace trm
