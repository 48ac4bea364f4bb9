// IEEE 754 binary16 ("half", float16) to float: the puzzle table of a bundle exported with
// --table-dtype float16 (init.bin's puzzle_emb_table with "dtype": "float16"). Header-only and exact:
// every half is a float. Subnormals (exponent 0) are mantissa x 2^-24; exponent 31 is infinity
// (mantissa 0) or NaN, which the reader then refuses as it refuses them in float32.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

namespace trm {

inline float half_to_float(uint16_t h) {
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  float magnitude;
  if (exponent == 0x1f) {
    magnitude = mantissa == 0 ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
  } else if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);                       // zero or subnormal
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400), exponent - 25);     // 1.m x 2^(e-15)
  }
  return (h & 0x8000) ? -magnitude : magnitude;
}

}  // namespace trm
