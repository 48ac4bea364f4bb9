// Halting policies of the host loop (trm_edge/runtime/loop.py):
//   fixed   every puzzle runs max_steps steps (the reference's evaluation);
//   q_halt  stop after the first step where sigmoid(q_halt) > threshold.
#pragma once

#include <string>

namespace trm {

enum class Halting { kQHalt, kFixed };

bool parse_halting(const std::string& text, Halting* out);
const char* halting_name(Halting halting);

// sigmoid(q) > t  <=>  q > log(t / (1 - t)); the limit is a float32, as numpy compares a float32
// q_halt with a Python float.
float halt_limit(double threshold);

inline bool halts(float q_halt, float limit) { return q_halt > limit; }

}  // namespace trm
