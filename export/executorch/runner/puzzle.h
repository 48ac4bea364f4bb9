// Puzzles as text <-> tokens, with the bundle's task encoding (manifest["task"]["encoding"]).
//   sudoku  digits 1..size -> d + 1, '0' or '.' -> blank (1); whitespace and | - + are ignored
//   maze    one character per cell ('#', ' ' or '.', 'S', 'G', 'o'); rows may be split by '/'
// Token lists ("0,3,1,..." or "0 3 1 ...") work for every model.
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

// An answer as the task writes it (sudoku: one digit per cell, '.' blank, '?' no digit), or ""
// when the task has no text form.
std::string render_answer(const std::vector<int64_t>& tokens, const Manifest& m);

// One puzzle per non-empty line ('#' starts a comment line): a line with a comma is a token list,
// any other line a puzzle in the task's text form.
bool read_puzzle_file(const std::string& path, const Manifest& m, std::vector<std::vector<int64_t>>* puzzles,
                      std::string* error);

}  // namespace trm
