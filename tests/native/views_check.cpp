// The runner's views decisions on given answers (tests/test_same.py): export/executorch/runner/views.cpp
// compiled alone with this main, so its answer keys (views.same) and the policies over them are checked
// against trm_edge/runtime/same.py and decide.py without a model.
//
// stdin, one case per line: open path start goal policy agree wave running unlaunched L K puzzle[L]
// answers[K*L] q[K] (agree, wave 0: none). stdout, one line per case: each answer's key score (-1: no
// score), then done (0/1) and the chosen position, all space-separated.
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "views.h"

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    trm::Same same;
    same.rule = "path";
    trm::Decision d;
    int agree = 0, wave = 0, running = 0, unlaunched = 0;
    size_t L = 0, K = 0;
    in >> same.open >> same.path >> same.ends[0] >> same.ends[1] >> d.policy >> agree >> wave >> running >>
        unlaunched >> L >> K;
    if (agree) d.agree = agree;
    if (wave) d.wave = wave;
    std::vector<int64_t> puzzle(L);
    for (auto& t : puzzle) in >> t;
    std::vector<std::vector<int64_t>> keys(K);
    for (auto& k : keys) {
      std::vector<int64_t> answer(L);
      for (auto& t : answer) in >> t;
      k = trm::answer_key(same, puzzle, answer);
    }
    trm::Votes votes;
    for (const auto& k : keys) votes.answers.push_back(&k);
    votes.q.resize(K);
    for (auto& q : votes.q) in >> q;
    if (!in) {
      std::cerr << "views_check: a short line\n";
      return 2;
    }
    for (const auto& k : keys) std::cout << trm::key_score(k) << ' ';
    std::cout << trm::decision_done(d, votes, running, unlaunched) << ' ' << trm::decision_choose(d, votes) << '\n';
  }
  return 0;
}
