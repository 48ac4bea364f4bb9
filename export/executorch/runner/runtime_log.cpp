#include "runtime_log.h"

#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <executorch/runtime/platform/platform.h>
#include <executorch/runtime/platform/runtime.h>

namespace trm {
namespace {

std::mutex log_mutex;
std::string captured;       // error lines since the last take_runtime_log()
bool echo = false;          // TRM_RUNNER_LOG=1

void capture(et_timestamp_t, et_pal_log_level_t level, const char* filename, const char*, size_t line,
             const char* message, size_t length) {
  std::string text(message, length);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (echo) std::fprintf(stderr, "executorch %c %s:%zu %s\n", char(level), filename, line, text.c_str());
  if (level != kError && level != kFatal) return;
  std::lock_guard<std::mutex> lock(log_mutex);
  if (captured.size() > 600) return;   // the first lines say what went wrong; later ones repeat it
  captured += (captured.empty() ? "" : "; ") + text;
}

}  // namespace

void init_runtime() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("TRM_RUNNER_LOG");
    echo = env && *env && std::string(env) != "0";
    executorch::runtime::register_pal(executorch::runtime::PalImpl::create(&capture, __FILE__));
    executorch::runtime::runtime_init();
  });
}

std::string take_runtime_log() {
  std::lock_guard<std::mutex> lock(log_mutex);
  std::string out;
  out.swap(captured);
  return out;
}

std::string describe(executorch::runtime::Error error) {
  char code[16];
  std::snprintf(code, sizeof code, "0x%02x", static_cast<unsigned>(error));
  std::string text = std::string(executorch::runtime::to_string(error)) + " (" + code + ")";
  const std::string log = take_runtime_log();
  return log.empty() ? text : text + ": " + log;
}

}  // namespace trm
