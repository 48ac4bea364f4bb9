#include "views.h"

#include <algorithm>
#include <cmath>
#include <deque>

namespace trm {

// Answers by (count, mean sigmoid(q)) descending; equal ones keep the order in which they first appear
// (Python's stable sort, reverse=True).
std::vector<Tally> tally(const Votes& v) {
  std::vector<Tally> ranked;
  for (size_t i = 0; i < v.answers.size(); ++i) {
    const double p = 1.0 / (1.0 + std::exp(-static_cast<double>(v.q[i])));   // as math.exp in Python
    auto it = std::find_if(ranked.begin(), ranked.end(), [&](const Tally& r) { return *v.answers[r.first] == *v.answers[i]; });
    if (it == ranked.end()) {
      ranked.push_back(Tally{i});
      it = ranked.end() - 1;
    }
    it->count += 1;
    it->total += p;
  }
  std::stable_sort(ranked.begin(), ranked.end(), [](const Tally& a, const Tally& b) {
    return a.count != b.count ? a.count > b.count : a.mean() > b.mean();
  });
  return ranked;
}

bool known_same(const std::string& rule) { return rule == "cells" || rule == "path"; }

std::vector<int64_t> answer_key(const Same& s, const std::vector<int64_t>& puzzle, const std::vector<int64_t>& answer) {
  if (s.rule != "path" || puzzle.size() != answer.size()) return answer;
  const int64_t n = static_cast<int64_t>(puzzle.size());
  int64_t side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  while (side * side > n) --side;
  while ((side + 1) * (side + 1) <= n) ++side;
  if (side * side != n) return answer;
  int64_t start = -1, goal = -1, marked = 0;
  int starts = 0, goals = 0;
  std::vector<char> route(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = puzzle[i], a = answer[i];
    if (p == s.open) {
      if (a != s.open && a != s.path) return answer;   // an open cell holds something else
      if (a == s.path) {
        ++marked;
        route[i] = 1;
      }
    } else if (a != p) {
      return answer;                                   // the answer changed the puzzle
    }
    if (p == s.ends[0]) { start = i; ++starts; route[i] = 1; }
    if (p == s.ends[1]) { goal = i; ++goals; route[i] = 1; }
  }
  if (starts != 1 || goals != 1) return answer;
  std::vector<int64_t> dist(static_cast<size_t>(n), -1);   // BFS from the start over the answer's route
  std::deque<int64_t> todo{start};
  dist[start] = 0;
  while (!todo.empty()) {
    const int64_t c = todo.front(), r = c / side, k = c % side;
    todo.pop_front();
    const int64_t next[4] = {r > 0 ? c - side : -1, r < side - 1 ? c + side : -1, k > 0 ? c - 1 : -1,
                             k < side - 1 ? c + 1 : -1};
    for (int64_t m : next) {
      if (m >= 0 && route[m] && dist[m] < 0) {
        dist[m] = dist[c] + 1;
        todo.push_back(m);
      }
    }
  }
  if (dist[goal] != marked + 1) return answer;
  return {-1, marked};
}

std::vector<int64_t> apply_view(const View& v, const std::vector<int64_t>& tokens) {
  std::vector<int64_t> out(tokens);
  if (!v.cells.empty()) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = tokens[static_cast<size_t>(v.cells[i])];
  }
  if (!v.tokens.empty()) {
    for (auto& t : out) t = v.tokens[static_cast<size_t>(t)];
  }
  return out;
}

std::vector<int64_t> invert_view(const View& v, const std::vector<int64_t>& tokens) {
  std::vector<int64_t> t(tokens);
  if (!v.tokens.empty()) {
    std::vector<int64_t> back(v.tokens.size());
    for (size_t i = 0; i < v.tokens.size(); ++i) back[static_cast<size_t>(v.tokens[i])] = static_cast<int64_t>(i);
    for (auto& x : t) x = (x >= 0 && x < static_cast<int64_t>(back.size())) ? back[static_cast<size_t>(x)] : x;
  }
  if (v.cells.empty()) return t;
  std::vector<int64_t> out(t.size());
  for (size_t i = 0; i < t.size(); ++i) out[static_cast<size_t>(v.cells[i])] = t[i];
  return out;
}

bool known_policy(const std::string& name) {
  return name == "vote" || name == "best_q" || name == "consensus" || name == "best";
}

bool takes_agree(const std::string& name) { return name == "consensus" || name == "best"; }

int64_t key_score(const std::vector<int64_t>& key) { return key.size() == 2 && key[0] == -1 ? key[1] : -1; }

namespace {

// policy best: the lowest score among the votes (-1: none scored) and how many votes have it
int64_t best_score(const Votes& votes, int* count) {
  int64_t top = -1;
  *count = 0;
  for (const auto* k : votes.answers) {
    const int64_t s = key_score(*k);
    if (s < 0) continue;
    if (top < 0 || s < top) {
      top = s;
      *count = 0;
    }
    *count += s == top;
  }
  return top;
}

}  // namespace

std::string decision_json(const Decision& d) {
  std::string s = "{\"policy\": \"" + d.policy + "\"";   // a known policy: [a-z_] only
  if (d.agree) s += ", \"agree\": " + std::to_string(*d.agree);
  if (d.wave) s += ", \"wave\": " + std::to_string(*d.wave);
  if (d.budget) s += ", \"budget\": " + std::to_string(*d.budget);
  if (d.verify) s += ", \"verify\": true";
  return s + "}";
}

std::string describe(const Decision& d) {
  std::string s = d.policy;
  if (d.agree) s += ", " + std::to_string(*d.agree) + " agree";
  if (d.wave) s += ", waves of " + std::to_string(*d.wave);
  if (d.budget) s += ", budget " + std::to_string(*d.budget);
  if (d.verify) s += ", verifier";
  return s;
}

bool decision_done(const Decision& d, const Votes& votes, int running, int unlaunched) {
  if (running == 0 && unlaunched == 0) return true;
  if (d.policy == "best") {
    if (!d.agree) return false;   // exact: every view runs, since a later one may score better
    int count = 0;
    if (best_score(votes, &count) >= 0) return count >= *d.agree;
  } else if (d.policy != "consensus") {
    return false;
  }
  if (votes.answers.empty()) return false;
  const std::vector<Tally> ranked = tally(votes);
  std::vector<int> counts;
  for (const auto& r : ranked) counts.push_back(r.count);
  std::sort(counts.rbegin(), counts.rend());
  if (d.agree && counts[0] >= *d.agree) return true;
  const int runner_up = counts.size() > 1 ? counts[1] : 0;
  return counts[0] > runner_up + running + unlaunched;   // no vote still to come can change the winner
}

size_t decision_choose(const Decision& d, const Votes& votes) {
  if (d.policy == "best_q") {
    size_t best = 0;
    for (size_t i = 1; i < votes.q.size(); ++i) {
      if (votes.q[i] > votes.q[best]) best = i;
    }
    return best;
  }
  const std::vector<Tally> ranked = tally(votes);
  int count = 0;
  const int64_t top = d.policy == "best" ? best_score(votes, &count) : -1;
  if (top >= 0) {   // best: the vote's ranking among the answers of the best score
    for (const Tally& r : ranked) {
      if (key_score(*votes.answers[r.first]) == top) return r.first;
    }
  }
  return ranked[0].first;
}

}  // namespace trm
