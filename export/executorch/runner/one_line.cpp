#include "one_line.h"

namespace trm {

size_t utf8_sequence(const unsigned char* p, size_t n) {
  if (n == 0) return 0;
  const unsigned c = p[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned lo = 0x80, hi = 0xBF;   // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;   // overlong
    if (c == 0xED) hi = 0x9F;   // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;   // overlong
    if (c == 0xF4) hi = 0x8F;   // above U+10FFFF
  } else {
    return 0;
  }
  if (len > n || p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
  }
  return len;
}

std::string one_line(const std::string& text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t len = utf8_sequence(p + i, text.size() - i);
    if (len == 0 || len == 4) {
      out += '?';
      i += len ? len : 1;
    } else if (len == 1) {
      out += p[i] < 0x20 || p[i] == 0x7f ? ' ' : text[i];
      ++i;
    } else {
      const bool c1 = len == 2 && p[i] == 0xC2 && p[i + 1] < 0xA0;   // U+0080..U+009F
      out += c1 ? std::string(" ") : text.substr(i, len);
      i += len;
    }
  }
  return out;
}

}  // namespace trm
