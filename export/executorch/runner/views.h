// Test-time views and the decision policies over them: trm_edge/runtime/decide.py and the views
// loop of trm_edge/runtime/loop.py (`drive`), written again for the runner with the same rules, so
// the runner makes the same decisions as Python.
//
// A view is data from the manifest (views.list): output position i takes input position cells[i],
// then token t becomes tokens[t] (either may be empty: unchanged). A puzzle runs as K views, view 0
// the identity; each halts on its own; each finished view's answer is mapped back (inverted) and
// the puzzle's decision policy picks one:
//   vote       most views; ties by the higher mean sigmoid(q_halt) in double, then the lower view
//              index (the reference's evaluators/arc.py ranking: a stable sort of (count, mean q))
//   best_q     the finished view with the highest q_halt (the lowest index on ties)
//   consensus  vote, stopping once the views still to come cannot change the winner; `agree` m also
//              stops once m finished views agree (not exact); `wave` w launches w views at a time
//   best       the answer of the best (lowest) score wins (views.same's objective: a path's length),
//              ties by the vote; unscored answers decide as consensus; `agree` m stops once m
//              finished views share the best score so far (not exact)
// `budget` N cuts a puzzle's running views once it has spent N view-steps (they vote as they are).
// `verify` (a task's rule checker) is Python-only: the runner has no per-task code. Which answers are
// the same answer is data too (views.same, trm_edge/runtime/same.py): equal cells, or rule "path".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace trm {

constexpr int kMaxViews = 1024;   // the schema's bound on views.count and views.list

struct View {
  std::vector<int64_t> cells;    // [L] or empty
  std::vector<int64_t> tokens;   // [V] or empty
  bool identity() const { return cells.empty() && tokens.empty(); }
};

std::vector<int64_t> apply_view(const View& v, const std::vector<int64_t>& tokens);
std::vector<int64_t> invert_view(const View& v, const std::vector<int64_t>& tokens);

struct Decision {
  std::string policy = "vote";         // vote, best_q, consensus
  std::optional<int> agree, wave;
  std::optional<int64_t> budget;
  bool verify = false;

  int first(int views) const { return wave ? std::min(*wave, views) : views; }
};

// The policies the runner implements, by name; those that take `agree` (consensus, best).
bool known_policy(const std::string& name);
bool takes_agree(const std::string& name);

// A key's score for policy best (trm_edge/runtime/same.py score): a path's length; -1: none.
int64_t key_score(const std::vector<int64_t>& key);

// A decision as the manifest writes a policy object (decide.py to_manifest): {"policy": "consensus",
// "agree": 2, "wave": 2}, options only where set.
std::string decision_json(const Decision& d);

// A short label (decide.py describe): "consensus, 2 agree, waves of 2".
std::string describe(const Decision& d);

// When two views' answers are the same answer (views.same; trm_edge/runtime/same.py):
//   cells  every cell equal (the default, absent views.same)
//   path   on a square grid, an answer that keeps the puzzle (cells other than `open` unchanged, `open`
//          cells `open` or `path`) and whose `path` cells form ONE simple 4-connected path between the
//          cells of the two `ends` tokens keys as that path's length; any other answer as its cells
struct Same {
  std::string rule = "cells";
  int64_t open = 0, path = 0;
  int64_t ends[2] = {0, 0};
};

// The rules the runner implements, by name.
bool known_same(const std::string& rule);

// What the decision compares: the answer itself, or {-1, length} for a path under rule "path" (no
// answer token is negative, so the two never meet).
std::vector<int64_t> answer_key(const Same& s, const std::vector<int64_t>& puzzle, const std::vector<int64_t>& answer);

// Finished views' answer keys (answer_key of the answers mapped back, in view order) and their last
// q_halt logits.
struct Votes {
  std::vector<const std::vector<int64_t>*> answers;
  std::vector<float> q;
};

// The reference's ranking of finished views' answers (decide.py tally): each distinct answer with the
// position of its first vote, its count and its mean sigmoid(q_halt) (double, summed in vote order,
// the C library's exp), sorted by (count, mean) descending; equal ones keep the order they first appear in.
struct Tally {
  size_t first = 0;
  int count = 0;
  double total = 0;
  double mean() const { return total / count; }
};
std::vector<Tally> tally(const Votes& votes);

// Whether a puzzle stops now (running: its views still running; unlaunched: not launched yet).
bool decision_done(const Decision& d, const Votes& votes, int running, int unlaunched);

// The position (into votes) of the answer the puzzle takes.
size_t decision_choose(const Decision& d, const Votes& votes);

}  // namespace trm
