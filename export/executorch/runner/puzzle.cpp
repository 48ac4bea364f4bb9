#include "puzzle.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>

#include "one_line.h"

namespace trm {
namespace {

// A character of puzzle text for a message: printable ASCII as it is, anything else as its code.
std::string shown(const std::string& text, size_t i) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  if (c >= ' ' && c <= '~') return std::string("'") + char(c) + "'";
  if (c < 0x80) return "the control character " + std::to_string(c);
  const size_t n = utf8_sequence(reinterpret_cast<const unsigned char*>(text.data()) + i, text.size() - i);
  return n ? "'" + text.substr(i, n) + "'" : "the byte " + std::to_string(c) + " (not UTF-8)";
}

// The characters a puzzle may use, for a message: "'.', '1', '2' ('0' for '.')".
std::string allowed(const Encoding& e) {
  std::string s, also;
  for (char c : e.cells) {
    if (c != Encoding::kNoCell) s += (s.empty() ? "'" : ", '") + std::string(1, c) + "'";
  }
  for (const auto& [from, to] : e.aliases) {
    also += (also.empty() ? "" : ", ") + std::string("'") + from + "' for '" + to + "'";
  }
  return also.empty() ? s : s + " (" + also + ")";
}

}  // namespace

bool encode_puzzle(const std::string& text, const Manifest& m, std::vector<int64_t>* tokens, std::string* error) {
  const Encoding& e = m.encoding;
  if (!e.has_text()) {
    *error = e.task.empty() ? "this bundle has no task, so puzzles have no text form: give --tokens"
                            : "the " + e.task + " task has no text form here: give --tokens";
    return false;
  }
  tokens->clear();
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n' || c == '\r' || e.skip.find(c) != std::string::npos) continue;
    auto it = e.token_of.find(c);
    if (it == e.token_of.end()) {
      *error = "cell " + std::to_string(tokens->size() + 1) + " is " + shown(text, i) + ", not a cell of this " +
               e.task + ": use " + allowed(e);
      return false;
    }
    tokens->push_back(it->second);
  }
  if (static_cast<int64_t>(tokens->size()) != m.seq_len) {
    *error = "puzzle has " + std::to_string(tokens->size()) + " cells, the model takes " + std::to_string(m.seq_len);
    return false;
  }
  return check_tokens(*tokens, m, error);
}

bool parse_tokens(const std::string& text, std::vector<int64_t>* tokens, std::string* error) {
  tokens->clear();
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == ',' || std::isspace(static_cast<unsigned char>(c)) || c == '[' || c == ']') {
      ++i;
      continue;
    }
    const char* start = text.c_str() + i;
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(start, &end, 10);
    if (end == start || errno == ERANGE) {
      *error = "tokens must be integers separated by commas, got '" + text.substr(i, 12) + "'";
      return false;
    }
    tokens->push_back(v);
    i += static_cast<size_t>(end - start);
  }
  return true;
}

bool check_tokens(const std::vector<int64_t>& tokens, const Manifest& m, std::string* error) {
  if (static_cast<int64_t>(tokens.size()) != m.seq_len) {
    *error = "a puzzle has " + std::to_string(tokens.size()) + " tokens, the model takes " + std::to_string(m.seq_len);
    return false;
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= m.vocab_size) {
      *error = "token " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
               " is outside the vocabulary 0.." + std::to_string(m.vocab_size - 1);
      return false;
    }
  }
  return true;
}

std::string render_answer(const std::vector<int64_t>& tokens, const Manifest& m) {
  const std::vector<char>& cells = m.encoding.cells;
  std::string s;
  if (cells.empty()) return s;
  for (int64_t t : tokens) {
    const char c = t >= 0 && t < static_cast<int64_t>(cells.size()) ? cells[static_cast<size_t>(t)] : Encoding::kNoCell;
    s += c == Encoding::kNoCell ? '?' : c;
  }
  return s;
}

bool read_puzzle_file(const std::string& path, const Manifest& m, std::vector<std::vector<int64_t>>* puzzles,
                      std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read the puzzle file " + path;
    return false;
  }
  const bool comments = !m.encoding.token_of.count('#');   // a maze's rows start with '#' walls
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || (comments && line[first] == '#')) continue;
    std::vector<int64_t> tokens;
    const bool ok = line.find(',') != std::string::npos
                        ? parse_tokens(line, &tokens, error) && check_tokens(tokens, m, error)
                        : encode_puzzle(line, m, &tokens, error);
    if (!ok) {
      *error = path + " line " + std::to_string(number) + ": " + *error;
      return false;
    }
    puzzles->push_back(std::move(tokens));
  }
  if (puzzles->empty()) {
    *error = "the puzzle file " + path + " holds no puzzle";
    return false;
  }
  return true;
}

}  // namespace trm
