#include "halt.h"

#include <cmath>

namespace trm {

bool parse_halting(const std::string& text, Halting* out) {
  if (text == "q_halt") {
    *out = Halting::kQHalt;
    return true;
  }
  if (text == "fixed") {
    *out = Halting::kFixed;
    return true;
  }
  return false;
}

const char* halting_name(Halting halting) { return halting == Halting::kFixed ? "fixed" : "q_halt"; }

float halt_limit(double threshold) { return static_cast<float>(std::log(threshold / (1.0 - threshold))); }

}  // namespace trm
