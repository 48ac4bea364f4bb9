// Error messages as one printable line (the CLI prints them, the JNI layer hands them to Java).
#pragma once

#include <cstddef>
#include <string>

namespace trm {

// The length of the UTF-8 sequence (RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF) that starts at p, of at most n bytes; 0 when there is none.
size_t utf8_sequence(const unsigned char* p, size_t n);

// `text` as one line: control characters (C0, DEL, C1) become spaces; bytes that are not UTF-8,
// and 4-byte sequences (not modified UTF-8, which JNI takes), become '?'.
std::string one_line(const std::string& text);

}  // namespace trm
