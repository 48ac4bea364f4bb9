#include "puzzle.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <fstream>

namespace trm {
namespace {

bool encode_sudoku(const std::string& text, const Manifest& m, std::vector<int64_t>* tokens, std::string* error) {
  const int size = m.encoding.size;
  const size_t n = static_cast<size_t>(m.seq_len);
  std::string cells;
  for (char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c)) && c != '|' && c != '-' && c != '+') cells += c;
  }
  if (cells.size() != n) {
    *error = "puzzle has " + std::to_string(cells.size()) + " cells, a " + std::to_string(size) + "x" +
             std::to_string(size) + " Sudoku has " + std::to_string(n) + ": give " + std::to_string(n) +
             " digits 1-" + std::to_string(size) + " with 0 or . for blanks";
    return false;
  }
  tokens->clear();
  for (size_t i = 0; i < n; ++i) {
    const char c = cells[i];
    if (c == '.' || c == '0') {
      tokens->push_back(m.encoding.blank);
    } else if (c >= '1' && c <= '9' && c - '0' <= size) {
      tokens->push_back(c - '0' + m.encoding.digit_offset);
    } else {
      *error = "cell " + std::to_string(i + 1) + " is '" + std::string(1, c) + "': use digits 1-" +
               std::to_string(size) + ", and 0 or . for blanks";
      return false;
    }
  }
  return true;
}

bool encode_chars(const std::string& text, const Manifest& m, std::vector<int64_t>* tokens, std::string* error) {
  const auto& chars = m.encoding.chars;
  tokens->clear();
  for (char c : text) {
    if (c == '/' || c == '\n' || c == '\r') continue;
    auto it = chars.find(c == '.' && !chars.count('.') ? ' ' : c);
    if (it == chars.end()) {
      std::string known;
      for (const auto& kv : chars) known += std::string(known.empty() ? "'" : ", '") + kv.first + "'";
      *error = "'" + std::string(1, c) + "' is not a cell of this " + m.encoding.task + " (cells: " + known + ")";
      return false;
    }
    tokens->push_back(it->second);
  }
  if (static_cast<int64_t>(tokens->size()) != m.seq_len) {
    *error = "puzzle has " + std::to_string(tokens->size()) + " cells, the model takes " + std::to_string(m.seq_len);
    return false;
  }
  return true;
}

}  // namespace

bool encode_puzzle(const std::string& text, const Manifest& m, std::vector<int64_t>* tokens, std::string* error) {
  if (m.encoding.task == "sudoku" && m.encoding.size > 0) return encode_sudoku(text, m, tokens, error) &&
                                                                check_tokens(*tokens, m, error);
  if (!m.encoding.chars.empty()) return encode_chars(text, m, tokens, error) && check_tokens(*tokens, m, error);
  *error = m.encoding.task.empty() ? "this bundle has no task, so puzzles have no text form: give --tokens"
                                   : "the " + m.encoding.task + " task has no text form here: give --tokens";
  return false;
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
  std::string s;
  if (m.encoding.task == "sudoku" && m.encoding.size > 0 && m.encoding.size <= 9) {
    for (int64_t t : tokens) {
      const int64_t d = t - m.encoding.digit_offset;
      s += t == m.encoding.blank ? '.' : (d >= 1 && d <= m.encoding.size ? char('0' + d) : '?');
    }
    return s;
  }
  if (!m.encoding.chars.empty()) {
    for (int64_t t : tokens) {
      char c = '?';
      for (const auto& kv : m.encoding.chars) {
        if (kv.second == t) c = kv.first;
      }
      s += c;
    }
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
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
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
