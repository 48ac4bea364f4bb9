// Puzzles as text <-> tokens, with the bundle's task encoding (manifest["task"]["encoding"]), read
// as data: no task has code of its own here.
//   reading  line ends (\r, \n) and the characters of "skip" are dropped; every other character
//            goes through "aliases" and is the token at its index in "cells"; seq_len of them
//   writing  token id i is cells[i]; '?' where that is null or i is past the end
// An encoding without "cells" (ARC's canvas) has no text form. Token lists ("0,3,1,..." or
// "0 3 1 ...") work for every model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "manifest.h"

namespace trm {

bool encode_puzzle(const std::string& text, const Manifest& m, std::vector<int64_t>* tokens, std::string* error);

bool parse_tokens(const std::string& text, std::vector<int64_t>* tokens, std::string* error);

// [L] tokens inside the vocabulary (trm_edge.runtime.loop.check_tokens's messages).
bool check_tokens(const std::vector<int64_t>& tokens, const Manifest& m, std::string* error);

// An answer as the encoding writes it (one character per token, '?' for a token no character
// writes), or "" when the task has no text form.
std::string render_answer(const std::vector<int64_t>& tokens, const Manifest& m);

// One puzzle per non-empty line ('#' starts a comment line, unless '#' is a character of the
// encoding, as a maze's walls): a line with a comma is a token list, any other line a puzzle in the
// task's text form.
bool read_puzzle_file(const std::string& path, const Manifest& m, std::vector<std::vector<int64_t>>* puzzles,
                      std::string* error);

}  // namespace trm
