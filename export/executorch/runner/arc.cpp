// ARC: the task JSON, grids and their augmentations, the canvas, and TrmRunner::solve_arc
// (trm_edge/runtime/arc.py solve_arc, rule for rule). See arc.h.
#include "arc.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "one_line.h"
#include "trm_runner.h"

namespace trm {
namespace {

using nlohmann::json;

constexpr int kDihedralInverse[8] = {0, 3, 2, 1, 4, 5, 6, 7};   // dihedral.py DIHEDRAL_INVERSE
constexpr int kMaxJsonDepth = 64;   // an ARC task nests 5 deep

struct TaskError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A grid of the task's JSON, checked as trm_edge.data.arc.check_grid checks a list of rows (its
// messages, in its order): rows all lists, of one length, cells whole numbers (not true/false), the
// grid 2-D and non-empty, at most 30x30, colours 0-9.
Grid grid_of(const json& g) {
  if (!g.is_array()) {   // numpy makes a 0-d array of it
    throw TaskError("a grid must be 2-D and non-empty, got shape ()");
  }
  if (g.empty()) throw TaskError("a grid is a list of rows, each a list of colours 0-9");
  for (const json& row : g) {
    if (!row.is_array()) throw TaskError("a grid is a list of rows, each a list of colours 0-9");
  }
  for (size_t r = 1; r < g.size(); ++r) {
    if (g[r].size() != g[0].size()) {
      throw TaskError("grid rows differ in length: row 1 has " + std::to_string(g[0].size()) + " cells, row " +
                      std::to_string(r + 1) + " has " + std::to_string(g[r].size()) + "; give every row the same width");
    }
  }
  for (const json& row : g) {
    for (const json& v : row) {
      if (!v.is_number_integer()) throw TaskError("grid cells must be whole numbers, the colours 0-9");
    }
  }
  const size_t h = g.size(), w = g[0].size();
  if (w == 0) throw TaskError("a grid must be 2-D and non-empty, got shape (" + std::to_string(h) + ", 0)");
  if (h > kArcSide || w > kArcSide) {
    throw TaskError("grid is " + std::to_string(h) + "x" + std::to_string(w) + "; ARC grids are at most " +
                    std::to_string(kArcSide) + "x" + std::to_string(kArcSide));
  }
  Grid out;
  out.rows = static_cast<int>(h);
  out.cols = static_cast<int>(w);
  for (size_t r = 0; r < h; ++r) {
    for (size_t c = 0; c < w; ++c) {
      const json& v = g[r][c];
      const bool colour = v.is_number_unsigned() ? v.get<uint64_t>() <= 9 : v.get<int64_t>() >= 0 && v.get<int64_t>() <= 9;
      if (!colour) {
        throw TaskError("colour " + v.dump() + " at row " + std::to_string(r + 1) + ", column " + std::to_string(c + 1) +
                        " is outside 0-9");
      }
      out.cells.push_back(static_cast<int>(v.get<int64_t>()));
    }
  }
  return out;
}

// A grid an app built itself: the same rules.
bool grid_ok(const Grid& g, std::string* error) {
  if (g.rows < 1 || g.cols < 1 || static_cast<int64_t>(g.cells.size()) != int64_t(g.rows) * g.cols) {
    *error = "a grid must be 2-D and non-empty, with rows x cols cells";
    return false;
  }
  if (g.rows > kArcSide || g.cols > kArcSide) {
    *error = "grid is " + std::to_string(g.rows) + "x" + std::to_string(g.cols) + "; ARC grids are at most 30x30";
    return false;
  }
  for (size_t i = 0; i < g.cells.size(); ++i) {
    if (g.cells[i] < 0 || g.cells[i] > 9) {
      *error = "colour " + std::to_string(g.cells[i]) + " at row " + std::to_string(i / g.cols + 1) + ", column " +
               std::to_string(i % g.cols + 1) + " is outside 0-9";
      return false;
    }
  }
  return true;
}

// Python's repr of a plain string, as its messages quote a task id ('00576224').
std::string quoted(const std::string& s) { return "'" + s + "'"; }

// round(x, places) as Python rounds a float: the correctly rounded decimal, read back.
double rounded(double x, int places) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", places, x);
  return std::strtod(buf, nullptr);
}

nlohmann::ordered_json grid_json(const std::optional<Grid>& g) {
  if (!g) return nullptr;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (int r = 0; r < g->rows; ++r) {
    nlohmann::ordered_json row = nlohmann::ordered_json::array();
    for (int c = 0; c < g->cols; ++c) row.push_back(g->at(r, c));
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

bool parse_arc_task(const std::string& json_text, std::vector<ArcTest>* tests, std::string* error,
                    const std::string& source) {
  tests->clear();
  json task;
  try {
    if (json_text.size() > kMaxArcJsonBytes) throw TaskError("is over 64 MiB");
    if (json_text.compare(0, 3, "\xEF\xBB\xBF") == 0) throw TaskError("starts with a byte-order mark");
    const json::parser_callback_t depth = [](int d, json::parse_event_t, json&) {
      if (d > kMaxJsonDepth) throw TaskError("nests deeper than " + std::to_string(kMaxJsonDepth));
      return true;
    };
    task = json::parse(json_text, depth);
  } catch (const json::parse_error& e) {
    *error = source + " is not a readable JSON ARC task (a syntax error at byte " + std::to_string(e.byte) +
             "); give a task's JSON file";
    return false;
  } catch (const std::exception& e) {
    *error = source + " is not a readable JSON ARC task (it " + e.what() + "); give a task's JSON file";
    return false;
  }
  const json* list = task.is_object() && task.contains("test") ? &task["test"] : nullptr;
  if (!list || !list->is_array() || list->empty()) {
    *error = "an ARC task is a JSON object with a non-empty \"test\" list of {\"input\": grid}; give the task's JSON "
             "as ARC ships it";
    return false;
  }
  for (size_t i = 0; i < list->size(); ++i) {
    const json& pair = (*list)[i];
    if (!pair.is_object() || !pair.contains("input")) {
      *error = "test " + std::to_string(i) + " of the ARC task has no \"input\" grid; give {\"input\": [[...], ...]}";
      return false;
    }
    ArcTest t;
    try {
      t.input = grid_of(pair["input"]);
      if (pair.contains("output") && !pair["output"].is_null()) t.output = grid_of(pair["output"]);
    } catch (const std::exception& e) {
      *error = "test " + std::to_string(i) + " of the ARC task: " + e.what();
      return false;
    }
    tests->push_back(std::move(t));
  }
  return true;
}

Grid dihedral(const Grid& g, int k) {
  const int H = g.rows, W = g.cols;
  const bool swap = k == 1 || k == 3 || k == 6 || k == 7;
  Grid out;
  out.rows = swap ? W : H;
  out.cols = swap ? H : W;
  out.cells.resize(g.cells.size());
  for (int i = 0; i < out.rows; ++i) {
    for (int j = 0; j < out.cols; ++j) {
      int r = i, c = j;
      switch (k) {
        case 1: r = j, c = W - 1 - i; break;           // np.rot90: counter-clockwise
        case 2: r = H - 1 - i, c = W - 1 - j; break;
        case 3: r = H - 1 - j, c = i; break;
        case 4: c = W - 1 - j; break;                  // flip left-right
        case 5: r = H - 1 - i; break;                  // flip up-down
        case 6: r = j, c = i; break;                   // transpose
        case 7: r = H - 1 - j, c = W - 1 - i; break;   // anti-transpose
        default: break;
      }
      out.cells[static_cast<size_t>(i) * out.cols + j] = g.at(r, c);
    }
  }
  return out;
}

Grid inverse_dihedral(const Grid& g, int k) { return dihedral(g, kDihedralInverse[k & 7]); }

Grid augment(const Grid& g, const Augmentation& a) {
  Grid c = g;
  for (int& v : c.cells) v = a.colours[static_cast<size_t>(v)];
  return dihedral(c, a.dihedral);
}

Grid invert(const Grid& g, const Augmentation& a) {
  std::array<int, 10> back{};
  for (int c = 0; c < 10; ++c) back[static_cast<size_t>(a.colours[c])] = c;
  Grid out = inverse_dihedral(g, a.dihedral);
  for (int& v : out.cells) v = back[static_cast<size_t>(v)];
  return out;
}

int canvas_side(int64_t cells) {
  for (int n = 1; n <= kArcSide; ++n) {
    if (int64_t(n) * n == cells) return n;
  }
  return 0;
}

std::vector<int64_t> encode_grid(const Grid& g, int side) {
  const size_t n = static_cast<size_t>(side);
  std::vector<int64_t> t(n * n, kArcPad);
  for (int r = 0; r < g.rows; ++r) {
    for (int c = 0; c < g.cols; ++c) t[r * n + c] = g.at(r, c) + kArcColour;
  }
  if (g.rows < side) {
    for (int c = 0; c < g.cols; ++c) t[g.rows * n + c] = kArcEos;
  }
  if (g.cols < side) {
    for (int r = 0; r < g.rows; ++r) t[r * n + g.cols] = kArcEos;
  }
  return t;
}

std::optional<Grid> decode_grid(const std::vector<int64_t>& tokens) {
  const int side = canvas_side(static_cast<int64_t>(tokens.size()));
  const size_t n = static_cast<size_t>(side);
  auto colour = [&](int r, int c) {
    const int64_t t = tokens[r * n + c];
    return t >= kArcColour && t < kArcColour + 10;
  };
  int width = side, best_area = 0, best_rows = 0, best_cols = 0;
  for (int r = 0; r < side; ++r) {
    int run = 0;
    while (run < side && colour(r, run)) ++run;   // the row's leading colour cells
    width = std::min(width, run);
    if (width == 0) break;
    if ((r + 1) * width > best_area) {            // the first of equal areas
      best_area = (r + 1) * width;
      best_rows = r + 1;
      best_cols = width;
    }
  }
  if (best_area == 0) return std::nullopt;
  Grid g;
  g.rows = best_rows;
  g.cols = best_cols;
  for (int r = 0; r < best_rows; ++r) {
    for (int c = 0; c < best_cols; ++c) g.cells.push_back(static_cast<int>(tokens[r * n + c] - kArcColour));
  }
  return g;
}

std::vector<int64_t> arc_answer(const std::vector<int64_t>& prediction, const Augmentation& a) {
  const std::optional<Grid> g = decode_grid(prediction);
  if (!g) return std::vector<int64_t>(prediction.size(), kArcPad);   // no grid: an empty canvas
  return encode_grid(invert(*g, a), canvas_side(static_cast<int64_t>(prediction.size())));
}

std::string format_grid(const Grid& g) {
  std::string s;
  for (int r = 0; r < g.rows; ++r) {
    if (r) s += '\n';
    for (int c = 0; c < g.cols; ++c) s += static_cast<char>('0' + g.at(r, c));
  }
  return s;
}

std::string arc_json(const ArcResult& r, const std::string& backend) {
  nlohmann::ordered_json j;
  j["task"] = r.task;
  j["views"] = r.views;
  j["decision"] = nlohmann::ordered_json::parse(decision_json(r.decision));
  j["tests"] = nlohmann::ordered_json::array();
  for (const ArcTestResult& t : r.tests) {
    nlohmann::ordered_json o, attempts = nlohmann::ordered_json::array(), votes = nlohmann::ordered_json::array();
    for (const ArcAttempt& a : t.attempts) {
      attempts.push_back(grid_json(a.grid));
      votes.push_back({a.votes, rounded(a.mean_q, 6)});
    }
    o["attempts"] = attempts;
    o["votes"] = votes;
    o["view_steps"] = t.view_steps;
    o["total_view_steps"] = t.total_view_steps;
    for (size_t k = 0; k < t.correct.size(); ++k) o["correct@" + std::to_string(k + 1)] = static_cast<bool>(t.correct[k]);
    j["tests"].push_back(std::move(o));
  }
  for (size_t k = 0; k < r.pass.size(); ++k) {
    if (r.pass[k]) j["pass@" + std::to_string(k + 1)] = *r.pass[k];
  }
  j["ms"] = rounded(r.ms, 1);
  if (!backend.empty()) j["backend"] = backend;
  return j.dump(-1, ' ', true, nlohmann::ordered_json::error_handler_t::replace);   // ASCII: JNI's modified UTF-8 too
}

// ---------------------------------------------------------------- TrmRunner::solve_arc

bool TrmRunner::solve_arc(const std::string& task_json, const std::string& task_id, const ArcOptions& options,
                          ArcResult* out, std::string* error, const std::string& source) {
  std::vector<ArcTest> tests;
  if (!parse_arc_task(task_json, &tests, error, source)) {
    *error = one_line(*error);
    return false;
  }
  return solve_arc(tests, task_id, options, out, error);
}

bool TrmRunner::solve_arc(const std::vector<ArcTest>& tests, const std::string& task_id, const ArcOptions& options,
                          ArcResult* out, std::string* error) {
  try {   // no exception crosses the API (a JNI caller would crash): std::bad_alloc on a huge task
    if (solve_arc_checked(tests, task_id, options, out, error)) return true;
  } catch (const std::exception& e) {
    *error = std::string("cannot solve the ARC task: ") + e.what();
  }
  *error = one_line(*error);
  return false;
}

bool TrmRunner::solve_arc_checked(const std::vector<ArcTest>& tests, const std::string& task_id,
                                  const ArcOptions& options, ArcResult* out, std::string* error) {
  const auto t0 = std::chrono::steady_clock::now();
  const Manifest& m = manifest_;
  // the task (runtime/arc.py read_task)
  if (tests.empty()) {
    *error = "an ARC task is a JSON object with a non-empty \"test\" list of {\"input\": grid}; give the task's JSON "
             "as ARC ships it";
    return false;
  }
  for (size_t i = 0; i < tests.size(); ++i) {
    std::string why;
    if (!grid_ok(tests[i].input, &why) || (tests[i].output && !grid_ok(*tests[i].output, &why))) {
      *error = "test " + std::to_string(i) + " of the ARC task: " + why;
      return false;
    }
  }
  if (tests.size() > kMaxArcTests) {
    *error = "the ARC task has " + std::to_string(tests.size()) + " test inputs; the runner takes at most " +
             std::to_string(kMaxArcTests) + " (ARC's tasks have 1 to 4)";
    return false;
  }
  // its views (task_views)
  if (m.task_rows.empty()) {
    *error = "this bundle ships no task rows (a blank puzzle row solves nothing on ARC); export it with --identifiers "
             "identifiers.json --tasks all-test|ID,... --views K";
    return false;
  }
  const TaskRows* entry = m.task(task_id);
  if (!entry) {
    std::string shown;
    for (size_t i = 0; i < m.task_rows.size() && i < 4; ++i) shown += (i ? ", " : "") + m.task_rows[i].id;
    *error = "task " + quoted(task_id) + " is not in this bundle (" + std::to_string(m.task_rows.size()) + " tasks: " +
             shown + (m.task_rows.size() > 4 ? ", ..." : "") + "); re-export with --tasks " + task_id;
    return false;
  }
  const int listed = static_cast<int>(entry->views.size());
  const int K = options.views.value_or(listed);
  if (K < 1 || K > listed) {
    *error = "task " + quoted(task_id) + " has " + std::to_string(listed) + " views in this bundle, not " +
             std::to_string(K) + "; ask for 1 to " + std::to_string(listed) + " or re-export with --views " +
             std::to_string(K);
    return false;
  }
  // the canvas: N x N tokens (30x30 the reference's), every test input fitting it, 12 tokens
  const int side = canvas_side(m.seq_len);
  if (side == 0) {
    *error = std::to_string(m.seq_len) + " tokens are no ARC canvas (a square of at most 30x30 = 900 tokens)";
    return false;
  }
  for (const ArcTest& t : tests) {
    if (t.input.rows > side || t.input.cols > side) {
      const std::string n = std::to_string(side);
      *error = "task " + task_id + ": the grid is " + std::to_string(t.input.rows) + "x" + std::to_string(t.input.cols) +
               ", larger than the " + n + "x" + n + " canvas; give a grid of at most " + n + "x" + n;
      return false;
    }
  }
  if (m.vocab_size < kArcVocab) {
    *error = "this model's vocabulary has " + std::to_string(m.vocab_size) + " tokens; ARC's canvas needs 12 (PAD, EOS, "
             "10 colours)";
    return false;
  }
  // the loop's options (loop.py check_options, check_views)
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
  if (K > kMaxViews) {
    *error = "views must be 1 to " + std::to_string(kMaxViews) + " per puzzle, not " + std::to_string(K) +
             "; ask for fewer with --views";
    return false;
  }
  if (!entry->views[0].identity()) {
    *error = "view 0 must be the identity: task " + quoted(task_id) + " lists " + entry->views[0].name +
             " first; re-export the bundle";
    return false;
  }
  const Decision d = options.decision.value_or(Decision{});
  if (!known_policy(d.policy)) {
    *error = "policy is vote, best_q, consensus or best, got '" + d.policy + "'";
    return false;
  }
  if (d.verify) {
    *error = "this policy verifies answers, but the task has no rule checker; drop --verify";
    return false;
  }
  if (d.agree && !takes_agree(d.policy)) {
    *error = "agree belongs to the consensus policy; use --policy consensus --agree M";
    return false;
  }
  if (options.attempts < 1) {
    *error = "attempts is " + std::to_string(options.attempts) + ", give 1 or more";
    return false;
  }
  const int64_t ndim = m.puzzle_emb_ndim;
  if (ndim <= 0 || init_.puzzle_table.empty()) {
    *error = "this bundle ships no puzzle table for its task rows; re-export it with --identifiers";
    return false;
  }

  const int B = static_cast<int>(tests.size());
  std::vector<Augmentation> augs(K);
  ViewRun run;
  run.puzzles = B;
  run.views = K;
  for (int v = 0; v < K; ++v) {
    augs[v].dihedral = entry->views[v].dihedral;
    augs[v].colours = entry->views[v].colours;
  }
  for (int p = 0; p < B; ++p) {
    for (int v = 0; v < K; ++v) {
      const TaskView& view = entry->views[v];
      run.seen.push_back(encode_grid(view.identity() ? tests[p].input : augment(tests[p].input, augs[v]), side));
      if (view.row < 0 || view.row >= init_.table_rows) {   // rule 8 holds: read_manifest checked it
        *error = "task_rows row " + std::to_string(view.row) + " is outside the puzzle table";
        return false;
      }
      run.emb.push_back(init_.puzzle_table.data() + view.row * ndim);
    }
  }
  run.answer = [&](int, int v, const std::vector<int64_t>& prediction) { return arc_answer(prediction, augs[v]); };
  std::vector<ViewSolution> sols;
  if (!run_views(run, halting, max_steps, threshold, d, &sols, error)) return false;

  ArcResult r;
  r.task = task_id;
  r.views = K;
  r.decision = d;
  std::vector<int> scored(2, 0), solved(2, 0);
  for (int p = 0; p < B; ++p) {
    const ViewSolution& s = sols[p];
    ArcTestResult t;
    t.view_steps = s.view_steps;
    t.view_q = s.view_q;
    t.finished = s.finished;
    t.total_view_steps = s.total_steps;
    Votes votes;   // the finished views in view order, as the reference's evaluator counts them
    for (int v = 0; v < K; ++v) {
      if (!s.finished[v]) continue;
      votes.answers.push_back(&s.view_answers[v]);
      votes.q.push_back(s.view_q[v]);
    }
    const std::vector<Tally> ranked = tally(votes);
    for (size_t a = 0; a < ranked.size() && a < static_cast<size_t>(options.attempts); ++a) {
      t.attempts.push_back(ArcAttempt{decode_grid(*votes.answers[ranked[a].first]), ranked[a].count, ranked[a].mean()});
    }
    if (tests[p].output) {
      bool hit = false;
      for (size_t k = 0; k < 2 && k < static_cast<size_t>(options.attempts); ++k) {
        hit = hit || (k < t.attempts.size() && t.attempts[k].grid && *t.attempts[k].grid == *tests[p].output);
        t.correct.push_back(hit);
        scored[k] += 1;
        solved[k] += hit;
      }
    }
    r.tests.push_back(std::move(t));
  }
  for (size_t k = 0; k < 2; ++k) {
    r.pass.push_back(scored[k] ? std::optional<double>(static_cast<double>(solved[k]) / scored[k]) : std::nullopt);
  }
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  *out = std::move(r);
  return true;
}

}  // namespace trm
