#include "views.h"

#include <algorithm>
#include <cmath>

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

bool known_policy(const std::string& name) { return name == "vote" || name == "best_q" || name == "consensus"; }

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
  if (d.policy != "consensus" || votes.answers.empty()) return false;
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
  return tally(votes)[0].first;
}

}  // namespace trm
