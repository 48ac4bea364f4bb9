// trm-sha256 FILE...: prints "<sha256>  <file>" per file, as sha256sum does (used by the tests).
#include <cstdio>
#include <string>

#include "sha256.h"

int main(int argc, char** argv) {
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    std::string hex, error;
    if (trm::sha256_file(argv[i], &hex, &error)) {
      std::printf("%s  %s\n", hex.c_str(), argv[i]);
    } else {
      std::fprintf(stderr, "trm-sha256: %s\n", error.c_str());
      status = 2;
    }
  }
  return status;
}
