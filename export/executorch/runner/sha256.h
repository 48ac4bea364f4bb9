// SHA-256 as FIPS 180-4 (section 6.2) defines it: streaming, no dependencies.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace trm {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  std::array<uint8_t, 32> digest();   // finishes the hash; call once
  std::string hex_digest();           // digest() as 64 lowercase hex digits

 private:
  void compress(const uint8_t block[64]);

  std::array<uint32_t, 8> h_;
  uint8_t block_[64];
  size_t used_ = 0;          // bytes waiting in block_
  uint64_t length_ = 0;      // message length so far, in bytes
};

// sha256 of a file's bytes as hex; false (and *error) when it cannot be read.
bool sha256_file(const std::string& path, std::string* hex, std::string* error);

}  // namespace trm
