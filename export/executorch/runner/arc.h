// ARC on the runner: grids, the 30x30 canvas encoding, the reference's augmentations, task JSON, and
// what TrmRunner::solve_arc returns. trm_edge/data/arc.py, trm_edge/data/dihedral.py and
// trm_edge/runtime/arc.py written again with the same rules, so the runner gives Python's answers.
//
//   canvas    N x N tokens, row-major (the reference's 30x30 = 900, or a smaller square model's N x N:
//             N = sqrt(seq_len)): PAD 0, EOS 1, colour c -> c + 2; the grid at the top-left, EOS in the
//             row just below it and the column just right of it (inside the canvas)
//   crop      the largest-area rectangle of colour tokens anchored at the top-left (the reference's
//             evaluator); no grid when the corner is not a colour
//   view      the reference's augmentation (manifest task_rows): colours first (c -> colours[c]), then
//             the dihedral transform (0 identity, 1 rot90 counter-clockwise, 2 rot180, 3 rot270,
//             4 flip left-right, 5 flip up-down, 6 transpose, 7 anti-transpose)
//   answer    a view's prediction cropped, mapped back (inverse transform, then colours) and encoded
//             again (the identity's too): equal grids vote together whatever lies past the EOS
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "halt.h"
#include "views.h"

namespace trm {

constexpr int kArcSide = 30;                      // the largest canvas (the reference's): 30 x 30 = 900 tokens
constexpr int64_t kArcPad = 0, kArcEos = 1, kArcColour = 2;
constexpr int64_t kArcVocab = 12;                 // PAD, EOS, 10 colours
constexpr size_t kMaxArcJsonBytes = size_t(64) << 20;   // an ARC task's JSON is a few kB
constexpr size_t kMaxArcTests = 64;               // test inputs per task (ARC's have 1 to 4), all in one batch

struct Grid {
  int rows = 0, cols = 0;
  std::vector<int> cells;                         // [rows * cols] colours 0-9, row-major
  int at(int r, int c) const { return cells[static_cast<size_t>(r) * cols + c]; }
  bool operator==(const Grid& o) const { return rows == o.rows && cols == o.cols && cells == o.cells; }
};

struct ArcTest {
  Grid input;
  std::optional<Grid> output;                     // the truth, where the task gives it
};

// The test inputs (and outputs) of an ARC task's JSON: {"train": [...], "test": [{"input": grid,
// "output"?: grid}, ...]}; grids 1..30 x 1..30 of colours 0-9. False with one line (runtime/arc.py
// read_task's messages) for anything else: not JSON, no non-empty "test" list, a test without
// "input", a grid that is ragged, empty, over 30x30, or holds a colour outside 0-9.
// `source` names the text in the message when it is no JSON (a file's path; default "the ARC task").
bool parse_arc_task(const std::string& json_text, std::vector<ArcTest>* tests, std::string* error,
                    const std::string& source = "the ARC task");

// One augmentation (a task_rows view's).
struct Augmentation {
  int dihedral = 0;
  std::array<int, 10> colours{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}};
};

Grid dihedral(const Grid& g, int k);              // transform k of trm_edge/data/dihedral.py
Grid inverse_dihedral(const Grid& g, int k);
Grid augment(const Grid& g, const Augmentation& a);     // colours, then the transform
Grid invert(const Grid& g, const Augmentation& a);      // the transform undone, then the colours

// The canvas side of a model of `cells` tokens: N when cells = N x N with 1 <= N <= 30, else 0.
int canvas_side(int64_t cells);

std::vector<int64_t> encode_grid(const Grid& g, int side = kArcSide);   // [side * side]; g fits it
// The crop of an N x N canvas (N from tokens.size(), a canvas_side); none without a grid.
std::optional<Grid> decode_grid(const std::vector<int64_t>& tokens);

// A view's answer in the task's frame, as voted: decode, invert, encode (all PAD without a grid).
std::vector<int64_t> arc_answer(const std::vector<int64_t>& prediction, const Augmentation& a);

struct ArcOptions {
  std::optional<int> views;           // the task's first K views (default: all it lists)
  std::optional<Decision> decision;   // default: the full vote (the reference's evaluation)
  std::optional<Halting> halting;     // default: the manifest's halting
  std::optional<double> threshold;
  std::optional<int> max_steps;
  int attempts = 2;                   // answers kept per test input (pass@1, pass@2)
};

struct ArcAttempt {
  std::optional<Grid> grid;           // none when the views' answer holds no grid
  int votes = 0;                      // views that gave this answer
  double mean_q = 0;                  // their mean sigmoid(q_halt)
};

struct ArcTestResult {
  std::vector<ArcAttempt> attempts;   // best first (count, then mean sigmoid(q_halt), then view order)
  std::vector<int> view_steps;        // [K] steps each view ran (0: never launched)
  std::vector<float> view_q;          // [K] each view's last q_halt logit (NaN: never launched)
  std::vector<bool> finished;         // [K] the views that voted
  int total_view_steps = 0;
  std::vector<bool> correct;          // correct@1, correct@2 (up to attempts); empty without the output
};

struct ArcResult {
  std::string task;
  int views = 0;                      // K
  Decision decision;                  // the policy that decided
  std::vector<ArcTestResult> tests;
  std::vector<std::optional<double>> pass;   // pass@1, pass@2: the share of the test inputs solved
  double ms = 0;                      // wall time of the solve
};

// The result as JSON with the keys of trm_edge/runtime/arc.py solve_arc's dict: task, views, decision,
// tests [{attempts (grids as lists of rows, null for none), votes [[count, mean q rounded to 6
// places]], view_steps, total_view_steps, correct@1, correct@2}], pass@1, pass@2; then ms and, where
// given, backend (as `trm-edge run --arc-task --json`).
std::string arc_json(const ArcResult& result, const std::string& backend = "");

// A grid as rows of digits, one row per line (trm_edge.data.arc.format_grid).
std::string format_grid(const Grid& g);

}  // namespace trm
