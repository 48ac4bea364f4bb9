// trm-runner: solve puzzles with an ExecuTorch bundle, natively. Every failure is one line on
// stderr and exit code 2; nothing is thrown out of main.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench.h"
#include "one_line.h"
#include "puzzle.h"
#include "trm_runner.h"

namespace {

const char kUsage[] =
    "usage: trm-runner BUNDLE (--puzzle STR | --tokens 0,3,1,... | --puzzle-file F) [options]\n"
    "       trm-runner BUNDLE --arc-task TASK.json [--task-id ID] [--views K] [--policy ...] [--json]\n"
    "\n"
    "Solves puzzles with an ExecuTorch bundle (a folder from `trm-edge export --target executorch`).\n"
    "\n"
    "  --puzzle STR        a puzzle in the task's text form (one character per cell, as the manifest's\n"
    "                      task.encoding gives: a 9x9 sudoku is 81 of 1-9 with . or 0 blank); repeatable\n"
    "  --tokens LIST       a puzzle as comma-separated tokens; repeatable\n"
    "  --puzzle-file F     one puzzle per line: a token list (with commas) or the task's text form\n"
    "  --halting POLICY    q_halt (stop once sigmoid(q_halt) > threshold) or fixed (all max steps);\n"
    "                      default: the manifest's\n"
    "  --threshold T       q_halt threshold, 0 < T < 1 (default: the manifest's)\n"
    "  --max-steps N       supervision steps at most, 1..1024 (default: the manifest's)\n"
    "  --puzzle-id N       row of the bundle's puzzle-embedding table (default 0, the blank id)\n"
    "  --threads N         ExecuTorch thread pool size (default: one per performance core)\n"
    "  --views K           run K views of each puzzle (the manifest's first K; default: its views.count),\n"
    "                      each answer mapped back, decided by the policy\n"
    "  --policy NAME       vote, best_q, consensus or best; with none of --policy/--agree/--wave/--budget,\n"
    "                      --views K runs the manifest's views.recommended policy for K (the row with\n"
    "                      the largest from_views <= K; none: views.policy), no --views its views.policy\n"
    "  --agree M           consensus, best: also stop once M finished views agree (best: on the best\n"
    "                      score so far; not exact)\n"
    "  --wave W            launch W views at a time, more only while the puzzle is undecided\n"
    "  --budget N          view-steps per puzzle at most\n"
    "  --json              one JSON line per puzzle: {\"answer\": [...], \"steps\": n, \"q_halt\": [...]}\n"
    "                      (with views: \"policy\", \"view_steps\", \"view_q_halt\", \"finished\",\n"
    "                      \"chosen_view\" too)\n"
    "  --arc-task F        ARC: one task's JSON (train pairs, test inputs, outputs optional), each\n"
    "                      test input run as the bundle's views of the task (manifest task_rows: its\n"
    "                      augmentations, each with its own puzzle row), voted: attempts 1 and 2\n"
    "                      (pass@1, pass@2); --views K takes the first K views, --policy decides\n"
    "                      (default: the full vote); --json prints trm-edge run --arc-task --json's keys\n"
    "  --task-id ID        ARC: the task's id in the bundle (default: the --arc-task file's name)\n"
    "  --bench N           time N steps at batch 1 (after 2 warm-up steps) and the puzzles given;\n"
    "                      prints one JSON line in trm-edge bench's row schema\n"
    "  --no-verify         skip the sha256 check of the bundle's files\n"
    "\n"
    "Exit codes: 0 solved, 2 bad bundle, puzzle or arguments (one line on stderr).\n";

struct Args {
  std::string bundle;
  std::vector<std::string> puzzles, token_lists, puzzle_files;
  std::string arc_task, task_id;   // --arc-task, --task-id
  bool puzzle_id_given = false;
  trm::SolveOptions solve;
  trm::ViewOptions views;
  bool with_views = false;   // any views option given
  bool policy_given = false;
  int threads = 0;
  int bench_steps = 0;
  bool json = false;
  bool verify = true;
  bool help = false;
};

bool to_int(const std::string& s, long long lo, long long hi, long long* out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool to_double(const std::string& s, double* out) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || errno == ERANGE) return false;
  *out = v;
  return true;
}

bool parse_args(int argc, char** argv, Args* a, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](std::string* v) {
      if (i + 1 >= argc) {
        *error = arg + " needs a value";
        return false;
      }
      *v = argv[++i];
      return true;
    };
    std::string v;
    long long n = 0;
    if (arg == "-h" || arg == "--help") {
      a->help = true;
    } else if (arg == "--json") {
      a->json = true;
    } else if (arg == "--no-verify") {
      a->verify = false;
    } else if (arg == "--puzzle") {
      if (!value(&v)) return false;
      a->puzzles.push_back(v);
    } else if (arg == "--tokens") {
      if (!value(&v)) return false;
      a->token_lists.push_back(v);
    } else if (arg == "--puzzle-file") {
      if (!value(&v)) return false;
      a->puzzle_files.push_back(v);
    } else if (arg == "--arc-task" || arg == "--task-id") {
      if (!value(&v)) return false;
      if (v.empty()) {
        *error = arg + " needs a value";
        return false;
      }
      (arg == "--arc-task" ? a->arc_task : a->task_id) = v;
    } else if (arg == "--halting") {
      trm::Halting h;
      if (!value(&v)) return false;
      if (!trm::parse_halting(v, &h)) {
        *error = "--halting is q_halt or fixed, got '" + v + "'";
        return false;
      }
      a->solve.halting = h;
    } else if (arg == "--threshold") {
      double t = 0;
      if (!value(&v)) return false;
      if (!to_double(v, &t) || !(t > 0.0 && t < 1.0)) {
        *error = "--threshold is a probability strictly between 0 and 1, got '" + v + "'";
        return false;
      }
      a->solve.threshold = t;
    } else if (arg == "--policy") {
      if (!value(&v)) return false;
      if (!trm::known_policy(v)) {
        *error = "--policy is vote, best_q, consensus or best, got '" + v + "'";
        return false;
      }
      if (!a->views.decision) a->views.decision = trm::Decision{};
      a->views.decision->policy = v;
      a->policy_given = true;
      a->with_views = true;
    } else if (arg == "--views" || arg == "--agree" || arg == "--wave" || arg == "--budget") {
      if (!value(&v)) return false;
      const long long hi = arg == "--budget" ? 1LL << 30 : trm::kMaxViews;
      if (!to_int(v, 1, hi, &n)) {
        *error = arg + " takes an integer 1.." + std::to_string(hi) + ", got '" + v + "'";
        return false;
      }
      a->with_views = true;
      if (arg == "--views") {
        a->views.views = static_cast<int>(n);
      } else {
        if (!a->views.decision) a->views.decision = trm::Decision{};
        if (arg == "--agree") a->views.decision->agree = static_cast<int>(n);
        if (arg == "--wave") a->views.decision->wave = static_cast<int>(n);
        if (arg == "--budget") a->views.decision->budget = n;
      }
    } else if (arg == "--max-steps" || arg == "--puzzle-id" || arg == "--threads" || arg == "--bench") {
      if (!value(&v)) return false;
      const long long lo = arg == "--puzzle-id" ? 0 : 1, hi = arg == "--max-steps" ? trm::kMaxSteps : 1 << 30;
      if (!to_int(v, lo, hi, &n)) {
        *error = arg + " takes an integer " + std::to_string(lo) + ".." + std::to_string(hi) + ", got '" + v + "'";
        return false;
      }
      if (arg == "--max-steps") a->solve.max_steps = static_cast<int>(n);
      if (arg == "--puzzle-id") a->solve.puzzle_id = n, a->puzzle_id_given = true;
      if (arg == "--threads") a->threads = static_cast<int>(n);
      if (arg == "--bench") a->bench_steps = static_cast<int>(n);
    } else if (!arg.empty() && arg[0] == '-') {
      *error = "unknown option " + arg + " (see --help)";
      return false;
    } else if (a->bundle.empty()) {
      a->bundle = arg;
    } else {
      *error = "one bundle at a time: got '" + a->bundle + "' and '" + arg + "'";
      return false;
    }
  }
  if (a->help) return true;
  if (a->views.decision && a->views.decision->agree && !trm::takes_agree(a->views.decision->policy)) {
    if (a->policy_given) {
      *error = "--agree belongs to --policy consensus, not " + a->views.decision->policy;
      return false;
    }
    a->views.decision->policy = "consensus";   // --agree alone names consensus, as trm-edge's CLI reads it
  }
  if (a->bundle.empty()) {
    *error = "no bundle given; usage: trm-runner BUNDLE (--puzzle STR | --tokens LIST | --puzzle-file F) (see --help)";
    return false;
  }
  if (!a->arc_task.empty() || !a->task_id.empty()) {
    if (a->arc_task.empty()) {
      *error = "--task-id names the task of --arc-task; give --arc-task TASK.json";
      return false;
    }
    if (!a->puzzles.empty() || !a->token_lists.empty() || !a->puzzle_files.empty()) {
      *error = "give --arc-task alone, without --puzzle, --tokens or --puzzle-file";
      return false;
    }
    if (a->bench_steps > 0 || a->puzzle_id_given) {
      *error = std::string(a->bench_steps > 0 ? "--bench" : "--puzzle-id") +
               " goes with puzzles, not --arc-task (each ARC view has its own puzzle row)";
      return false;
    }
    return true;
  }
  if (a->puzzles.empty() && a->token_lists.empty() && a->puzzle_files.empty() && a->bench_steps == 0) {
    *error = "no puzzle given: use --puzzle STR, --tokens LIST or --puzzle-file F (see --help)";
    return false;
  }
  return true;
}

bool gather_puzzles(const Args& a, const trm::Manifest& m, std::vector<std::vector<int64_t>>* out,
                    std::string* error) {
  for (const auto& p : a.puzzles) {
    std::vector<int64_t> t;
    if (!trm::encode_puzzle(p, m, &t, error)) return false;
    out->push_back(std::move(t));
  }
  for (const auto& list : a.token_lists) {
    std::vector<int64_t> t;
    if (!trm::parse_tokens(list, &t, error) || !trm::check_tokens(t, m, error)) {
      *error = "--tokens: " + *error;
      return false;
    }
    out->push_back(std::move(t));
  }
  for (const auto& f : a.puzzle_files) {
    if (!trm::read_puzzle_file(f, m, out, error)) return false;
  }
  return true;
}

// The answer in the task's text form, or as comma-separated tokens where the task has none.
std::string answer_text(const std::vector<int64_t>& answer, const trm::Manifest& m) {
  std::string text = trm::render_answer(answer, m);
  if (text.empty()) {
    for (size_t i = 0; i < answer.size(); ++i) text += (i ? "," : "") + std::to_string(answer[i]);
  }
  return text;
}

void print_solution(const trm::Solution& s, const trm::Manifest& m, bool json, size_t index, size_t count) {
  if (json) {
    nlohmann::ordered_json j;
    j["answer"] = s.answer;
    j["steps"] = s.steps;
    j["q_halt"] = s.q_halt;
    j["ms"] = s.ms;
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  if (count > 1) std::printf("%spuzzle %zu/%zu\n", index ? "\n" : "", index + 1, count);
  const std::string answer = answer_text(s.answer, m);
  std::printf("answer  %s\nsteps   %d\nq_halt ", answer.c_str(), s.steps);
  for (float q : s.q_halt) std::printf(" %.6f", q);
  std::printf("\n");
}

void print_views(const trm::ViewSolution& s, const trm::Manifest& m, bool json, size_t index, size_t count) {
  if (json) {
    nlohmann::ordered_json j;
    j["answer"] = s.answer;
    j["steps"] = s.total_steps;
    j["views"] = s.views;
    j["policy"] = nlohmann::ordered_json::parse(trm::decision_json(s.decision));
    j["view_steps"] = s.view_steps;
    std::vector<nlohmann::ordered_json> q;
    for (float v : s.view_q) q.push_back(std::isnan(v) ? nlohmann::ordered_json() : nlohmann::ordered_json(v));
    j["view_q_halt"] = q;
    j["finished"] = s.finished;
    j["chosen_view"] = s.chosen;
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  if (count > 1) std::printf("%spuzzle %zu/%zu\n", index ? "\n" : "", index + 1, count);
  const std::string answer = answer_text(s.answer, m);
  std::printf("answer  %s\nviews   %d of %d agree, view %d chosen\nsteps   %d view-steps (", answer.c_str(), s.agreeing,
              s.views, s.chosen, s.total_steps);
  for (int v = 0; v < s.views; ++v) std::printf("%s%d", v ? " " : "", s.view_steps[v]);
  std::printf(")\npolicy  %s\n", trm::describe(s.decision).c_str());
}

// --arc-task: the task's JSON file (the Python CLI's reading and messages).
bool read_task_file(const std::string& path, std::string* text, std::string* error) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    *error = "no ARC task at " + path + "; give a task's JSON file";
    return false;
  }
  if (!std::filesystem::is_regular_file(path, ec) || std::filesystem::file_size(path, ec) > trm::kMaxArcJsonBytes) {
    *error = path + " is not a readable JSON ARC task (a regular file of at most 64 MiB); give a task's JSON file";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  if (!in) {
    *error = path + " is not a readable JSON ARC task (cannot read it); give a task's JSON file";
    return false;
  }
  *text = buf.str();
  return true;
}

// What `trm-edge run --arc-task` prints: per test input its attempts as grids with their votes, whether
// they are right (where the task gives the output), the view-steps; then a summary line.
void print_arc(const trm::ArcResult& r, const trm::Manifest& m, bool json) {
  const std::string backend = m.target + " " + m.precision;
  if (json) {
    std::printf("%s\n", trm::arc_json(r, backend + " (trm-runner)").c_str());
    return;
  }
  for (size_t i = 0; i < r.tests.size(); ++i) {
    const trm::ArcTestResult& t = r.tests[i];
    for (size_t a = 0; a < t.attempts.size(); ++a) {
      char q6[64];   // the 6-place value the JSON gives, shown to 3 places (as Python rounds, then formats)
      std::snprintf(q6, sizeof q6, "%.6f", t.attempts[a].mean_q);
      std::printf("test %zu, attempt %zu: %d of %d views, mean halt probability %.3f\n", i + 1, a + 1, t.attempts[a].votes,
                  r.views, std::strtod(q6, nullptr));
      std::printf("%s\n", t.attempts[a].grid ? trm::format_grid(*t.attempts[a].grid).c_str()
                                            : "(no grid: the views' answers held none)");
    }
    if (t.correct.size() >= 2) {
      std::printf("correct: attempt 1 %s, attempts 1-2 %s\n", t.correct[0] ? "yes" : "no", t.correct[1] ? "yes" : "no");
    }
    std::printf("view-steps: %d (", t.total_view_steps);
    for (size_t v = 0; v < t.view_steps.size(); ++v) std::printf("%s%d", v ? " " : "", t.view_steps[v]);
    std::printf(")\n\n");
  }
  std::printf("task %s: %zu test input(s), %d views each (%s), %.0f ms with %s", trm::one_line(r.task).c_str(),
              r.tests.size(), r.views, r.decision.policy.c_str(), r.ms, backend.c_str());
  if (r.pass.size() >= 2 && r.pass[1]) std::printf(", pass@1 %.0f%%, pass@2 %.0f%%", *r.pass[0] * 100, *r.pass[1] * 100);
  std::printf("\n");
}

int fail(const std::string& message) {
  // one line, no control characters, UTF-8 (names from a corrupt file, bytes ExecuTorch logged)
  std::fprintf(stderr, "trm-runner: %s\n", trm::one_line(message).c_str());
  return 2;
}

int run(int argc, char** argv) {
  Args args;
  std::string error;
  if (!parse_args(argc, argv, &args, &error)) return fail(error);
  if (args.help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  trm::TrmRunner::Options options;
  options.verify = args.verify;
  options.threads = args.threads;
  auto runner = trm::TrmRunner::open(args.bundle, options, &error);
  if (!runner) return fail(error);
  if (!args.arc_task.empty()) {
    std::string task;
    if (!read_task_file(args.arc_task, &task, &error)) return fail(error);
    trm::ArcOptions arc;
    arc.views = args.views.views;
    arc.decision = args.views.decision;   // none: the full vote
    arc.halting = args.solve.halting;
    arc.threshold = args.solve.threshold;
    arc.max_steps = args.solve.max_steps;
    const std::string id = args.task_id.empty() ? std::filesystem::path(args.arc_task).stem().string() : args.task_id;
    trm::ArcResult result;
    if (!runner->solve_arc(task, id, arc, &result, &error, args.arc_task)) return fail(error);
    print_arc(result, runner->manifest(), args.json);
    return 0;
  }
  std::vector<std::vector<int64_t>> puzzles;
  if (!gather_puzzles(args, runner->manifest(), &puzzles, &error)) return fail(error);

  if (args.bench_steps > 0) {
    trm::BenchSettings settings;
    settings.step_reps = args.bench_steps;
    settings.bundle = args.bundle;
    std::string line;
    if (!trm::bench(*runner, puzzles, args.solve, settings, &line, &error)) return fail(error);
    std::printf("%s\n", line.c_str());
    return 0;
  }
  if (args.with_views || runner->manifest().views_count > 1) {
    for (size_t i = 0; i < puzzles.size(); ++i) {
      trm::ViewSolution s;
      if (!runner->solve_views(puzzles[i], args.solve, args.views, &s, &error)) {
        return fail(puzzles.size() > 1 ? "puzzle " + std::to_string(i + 1) + ": " + error : error);
      }
      print_views(s, runner->manifest(), args.json, i, puzzles.size());
      std::fflush(stdout);
    }
    return 0;
  }
  for (size_t i = 0; i < puzzles.size(); ++i) {
    trm::Solution s;
    if (!runner->solve(puzzles[i], args.solve, &s, &error)) {
      return fail(puzzles.size() > 1 ? "puzzle " + std::to_string(i + 1) + ": " + error : error);
    }
    print_solution(s, runner->manifest(), args.json, i, puzzles.size());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    return fail(std::string("internal error: ") + e.what());
  } catch (...) {
    return fail("internal error");
  }
}
