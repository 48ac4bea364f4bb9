// JNI over the native runner (export/executorch/runner): what the Kotlin `TrmNative` object calls.
//
//   TrmNative.open(bundleDir, threads)                     -> handle (a TrmRunner)
//   TrmNative.gridSize(handle)                             -> the manifest's task.size (9 for a 9x9 Sudoku), 0 without one
//   TrmNative.solve(handle, puzzle, halting, threshold, listener) -> the answer as text
//       listener.onStep(step, answerText, haltProbability, ms) after every step; false stops the loop
//   TrmNative.solveViews(handle, puzzle, halting, threshold, views, policy, agree, wave, budget)
//       -> {"answer": text, "views": K, "policy": {...}, "view_steps": [...], "chosen_view": v,
//           "agreeing_views": n}
//       K views of the puzzle decided by the policy (vote, best_q, consensus). No policy (null or ""
//       and 0s): TrmRunner::decision_for, as `trm-runner --views K` without one: the manifest's
//       views.recommended row for K (else views.policy; views 0: views.count with views.policy)
//   TrmNative.solveArc(handle, taskJson, taskId, views, policy, agree, wave, budget)
//       -> the JSON of `trm-runner BUNDLE --arc-task TASK.json --json` (trm_edge/runtime/arc.py's keys:
//          task, views, decision, tests [{attempts, votes, view_steps, total_view_steps, correct@1,
//          correct@2}], pass@1, pass@2; and ms): an ARC task's test inputs through the bundle's views
//          of taskId (task_rows), voted; views 0: all the task lists; no policy ("" and 0s): the full
//          vote, as Python's solve_arc; halting as the manifest says
//   TrmNative.defaultViews(handle)                         -> the manifest's views.count
//   TrmNative.close(handle)
//
// Puzzles and answers travel as the task's text ("53..7....", '.' blank), read and written with the
// manifest's task.encoding (data: nothing here knows a task), so the app never sees tokens. Every
// failure becomes an IllegalArgumentException carrying the runner's one-line message.
// This file is built and run on the development machine too (tests/test_android_jni.py drives it
// from a plain JVM), so everything here but the Kotlin UI is tested without an Android SDK.
#include <jni.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "one_line.h"
#include "puzzle.h"
#include "trm_runner.h"

namespace {

struct Handle {
  std::unique_ptr<trm::TrmRunner> runner;
  std::mutex mutex;   // one TrmRunner runs one solve at a time
};

void throw_error(JNIEnv* env, const std::string& message) {
  if (env->ExceptionCheck()) return;   // a pending Java exception (e.g. from the listener) wins
  jclass cls = env->FindClass("java/lang/IllegalArgumentException");
  if (cls != nullptr) env->ThrowNew(cls, trm::one_line(message).c_str());   // modified UTF-8, one line
}

std::string to_string(JNIEnv* env, jstring text) {
  if (text == nullptr) return {};
  const char* chars = env->GetStringUTFChars(text, nullptr);
  std::string s = chars ? chars : "";
  if (chars) env->ReleaseStringUTFChars(text, chars);
  return s;
}

Handle* handle_of(JNIEnv* env, jlong handle) {
  if (handle == 0) throw_error(env, "the runner is closed (open a bundle first)");
  return reinterpret_cast<Handle*>(handle);
}

// The puzzle (the task's text) and the halting options of a solve call; false with the Java
// exception thrown.
bool read_request(JNIEnv* env, const trm::Manifest& m, jstring puzzle, jstring halting, jdouble threshold,
                  std::vector<int64_t>* tokens, trm::SolveOptions* options) {
  std::string error;
  if (!trm::encode_puzzle(to_string(env, puzzle), m, tokens, &error)) {
    throw_error(env, error);
    return false;
  }
  trm::Halting policy;
  if (!trm::parse_halting(to_string(env, halting), &policy)) {
    throw_error(env, "halting is q_halt or fixed, got '" + to_string(env, halting) + "'");
    return false;
  }
  options->halting = policy;
  options->threshold = threshold;
  return true;
}

// The decision policy a call names (policy, agree, wave, budget; "" and 0s: none, *out left empty);
// false with the Java exception thrown.
bool read_decision(JNIEnv* env, jstring policy, jint agree, jint wave, jint budget, std::optional<trm::Decision>* out) {
  const std::string name = to_string(env, policy);
  if (name.empty() && agree <= 0 && wave <= 0 && budget <= 0) return true;
  trm::Decision d;
  d.policy = name.empty() ? (agree > 0 ? "consensus" : "vote") : name;
  if (!trm::known_policy(d.policy)) {
    throw_error(env, "policy is vote, best_q, consensus or best, got '" + d.policy + "'");
    return false;
  }
  if (agree > 0 && !trm::takes_agree(d.policy)) {
    throw_error(env, "agree belongs to the consensus and best policies, not " + d.policy);
    return false;
  }
  if (agree > 0) d.agree = agree;
  if (wave > 0) d.wave = wave;
  if (budget > 0) d.budget = budget;
  *out = d;
  return true;
}

}  // namespace

extern "C" {

JNIEXPORT jlong JNICALL Java_org_trmedge_demo_TrmNative_open(JNIEnv* env, jclass, jstring bundle_dir, jint threads) {
  std::string error;
  trm::TrmRunner::Options options;
  options.threads = threads;
  auto runner = trm::TrmRunner::open(to_string(env, bundle_dir), options, &error);
  if (!runner) {
    throw_error(env, error);
    return 0;
  }
  auto* h = new Handle();
  h->runner = std::move(runner);
  return reinterpret_cast<jlong>(h);
}

JNIEXPORT jint JNICALL Java_org_trmedge_demo_TrmNative_gridSize(JNIEnv* env, jclass, jlong handle) {
  Handle* h = handle_of(env, handle);
  if (h == nullptr) return 0;
  return h->runner->manifest().encoding.size;
}

JNIEXPORT jstring JNICALL Java_org_trmedge_demo_TrmNative_solve(JNIEnv* env, jclass, jlong handle, jstring puzzle,
                                                                jstring halting, jdouble threshold,
                                                                jobject listener) {
  Handle* h = handle_of(env, handle);
  if (h == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(h->mutex);
  const trm::Manifest& m = h->runner->manifest();
  std::string error;
  std::vector<int64_t> tokens;
  trm::SolveOptions options;
  if (!read_request(env, m, puzzle, halting, threshold, &tokens, &options)) return nullptr;

  jmethodID on_step = nullptr;
  if (listener != nullptr) {
    jclass cls = env->GetObjectClass(listener);
    on_step = env->GetMethodID(cls, "onStep", "(ILjava/lang/String;FD)Z");
    if (on_step == nullptr) return nullptr;   // NoSuchMethodError is pending
    options.on_step = [&](const trm::StepReport& r) {
      jstring answer = env->NewStringUTF(trm::render_answer(r.answer, m).c_str());
      if (answer == nullptr) return false;    // OutOfMemoryError is pending
      const float p = 1.0f / (1.0f + std::exp(-r.q_halt));
      const jboolean go = env->CallBooleanMethod(listener, on_step, static_cast<jint>(r.step), answer, p, r.ms);
      env->DeleteLocalRef(answer);
      return !env->ExceptionCheck() && go == JNI_TRUE;
    };
  }
  trm::Solution s;
  if (!h->runner->solve(tokens, options, &s, &error)) {
    throw_error(env, error);
    return nullptr;
  }
  if (env->ExceptionCheck()) return nullptr;   // the listener threw: let it propagate
  return env->NewStringUTF(trm::render_answer(s.answer, m).c_str());
}

JNIEXPORT jint JNICALL Java_org_trmedge_demo_TrmNative_defaultViews(JNIEnv* env, jclass, jlong handle) {
  Handle* h = handle_of(env, handle);
  if (h == nullptr) return 0;
  return h->runner->manifest().views_count;
}

JNIEXPORT jstring JNICALL Java_org_trmedge_demo_TrmNative_solveViews(JNIEnv* env, jclass, jlong handle, jstring puzzle,
                                                                     jstring halting, jdouble threshold, jint views,
                                                                     jstring policy, jint agree, jint wave, jint budget) {
  Handle* h = handle_of(env, handle);
  if (h == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(h->mutex);
  const trm::Manifest& m = h->runner->manifest();
  std::string error;
  std::vector<int64_t> tokens;
  trm::SolveOptions options;
  if (!read_request(env, m, puzzle, halting, threshold, &tokens, &options)) return nullptr;
  trm::ViewOptions vo;
  if (views > 0) vo.views = views;
  if (!read_decision(env, policy, agree, wave, budget, &vo.decision)) return nullptr;   // none: decision_for
  trm::ViewSolution s;
  if (!h->runner->solve_views(tokens, options, vo, &s, &error)) {
    throw_error(env, error);
    return nullptr;
  }
  std::string steps;
  for (int v = 0; v < s.views; ++v) {
    steps += (v ? "," : "") + std::to_string(s.view_steps[v]);
  }
  const std::string out = "{\"answer\": \"" + trm::render_answer(s.answer, m) + "\", \"views\": " +
                          std::to_string(s.views) + ", \"policy\": " + trm::decision_json(s.decision) +
                          ", \"view_steps\": [" + steps + "], \"chosen_view\": " + std::to_string(s.chosen) +
                          ", \"agreeing_views\": " + std::to_string(s.agreeing) + "}";
  return env->NewStringUTF(out.c_str());
}

JNIEXPORT jstring JNICALL Java_org_trmedge_demo_TrmNative_solveArc(JNIEnv* env, jclass, jlong handle, jstring task_json,
                                                                   jstring task_id, jint views, jstring policy,
                                                                   jint agree, jint wave, jint budget) {
  Handle* h = handle_of(env, handle);
  if (h == nullptr) return nullptr;
  std::lock_guard<std::mutex> lock(h->mutex);
  trm::ArcOptions options;
  if (views > 0) options.views = views;
  if (!read_decision(env, policy, agree, wave, budget, &options.decision)) return nullptr;   // none: the vote
  std::string error;
  trm::ArcResult result;
  if (!h->runner->solve_arc(to_string(env, task_json), to_string(env, task_id), options, &result, &error)) {
    throw_error(env, error);
    return nullptr;
  }
  return env->NewStringUTF(trm::arc_json(result).c_str());   // ASCII JSON
}

JNIEXPORT void JNICALL Java_org_trmedge_demo_TrmNative_close(JNIEnv*, jclass, jlong handle) {
  auto* h = reinterpret_cast<Handle*>(handle);
  if (h == nullptr) return;
  { std::lock_guard<std::mutex> lock(h->mutex); }   // wait for a solve still running
  delete h;
}

}  // extern "C"
