// ExecuTorch's own log, captured: its error lines go into the runner's one-line messages instead of
// onto stderr (TRM_RUNNER_LOG=1 prints everything it logs, as it comes).
#pragma once

#include <string>

#include <executorch/runtime/core/error.h>

namespace trm {

// Routes ExecuTorch's log here and initialises its runtime; idempotent, thread-safe.
void init_runtime();

// The error lines ExecuTorch logged since the last call ("" if none), joined by "; ".
std::string take_runtime_log();

// "Error::InvalidProgram (0x23)" and what ExecuTorch logged about it.
std::string describe(executorch::runtime::Error error);

}  // namespace trm
