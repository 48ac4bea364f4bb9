// Reading manifest.json and checking it against the bundle contract: the rules 1-8 of
// export/README.md, the same rules trm_edge/runtime/manifest.py applies. Rule 1's schema
// (export/bundle.schema.json) is checked here by hand, one function per part of it.
// Checking throws ManifestError internally; read_manifest turns every failure (ours and
// nlohmann's) into one line.
#include "manifest.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <set>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "bundle_file.h"
#include "one_line.h"

namespace trm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kFormatVersion = 1;
constexpr uint64_t kMaxManifestBytes = uint64_t(16) << 20;   // rule 1
constexpr int kMaxDepth = 512;                               // JSON nesting (a manifest nests 5 deep)
constexpr int64_t kMaxBatch = 4096;                          // the schema's batch_size
constexpr int64_t kMaxDim = int64_t(1) << 30;                // the schema's bound on a dimension
constexpr int64_t kMaxFileBytes = int64_t(1) << 34;          // the schema's bound on files.*.bytes
constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();

const std::initializer_list<const char*> kPrecisions = {"fp32", "fp16", "int8", "int8-weights", "int8-static"};
const std::initializer_list<const char*> kTensorNames = {"tokens", "puzzle_emb", "y", "z",
                                                         "y_next", "z_next", "logits", "q_halt"};
const std::initializer_list<const char*> kDtypes = {"int64", "int32", "float32"};
const std::initializer_list<const char*> kInitArrays = {"y_init", "z_init", "puzzle_emb_table"};

struct ManifestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------- rule 1: a regular file, UTF-8 JSON

// Every byte part of an RFC 3629 UTF-8 sequence, as Python's decoder wants.
bool is_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (size_t i = 0, len; i < s.size(); i += len) {
    len = utf8_sequence(p + i, s.size() - i);
    if (len == 0) return false;
  }
  return true;
}

// dir/manifest.json: there, a regular file (no symlink, no FIFO), at most 16 MiB.
bool read_manifest_file(const std::string& dir, std::string* text, std::string* error) {
  const std::string path = (fs::path(dir) / "manifest.json").string();
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    *error = errno == ENOENT ? dir + " is not a bundle: it has no manifest.json (export one with `trm-edge export`)"
                             : "cannot read " + path + " (" + std::strerror(errno) + ")";
    return false;
  }
  BundleFile f;
  if (!open_bundle_file(dir, "manifest.json", &f, error)) return false;
  if (f.size() > kMaxManifestBytes) {
    *error = path + " has " + std::to_string(f.size()) + " bytes, more than a manifest's " +
             std::to_string(kMaxManifestBytes) + "; re-export the bundle";
    return false;
  }
  std::vector<unsigned char> bytes;
  if (!read_bundle_file(f, f.size(), &bytes, error)) {
    *error = "cannot read " + path + ": " + *error;
    return false;
  }
  text->assign(bytes.begin(), bytes.end());
  return true;
}

// UTF-8 JSON as Python's json.loads reads it: no byte-order mark, no NaN/Infinity (nlohmann
// refuses those literals), nested at most kMaxDepth deep.
json parse_json(const std::string& text) {
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) throw ManifestError("is not valid JSON (a byte-order mark at the start)");
  if (!is_utf8(text)) throw ManifestError("is not UTF-8 text");
  const json::parser_callback_t depth = [](int d, json::parse_event_t, json&) {
    if (d > kMaxDepth) throw ManifestError("is not valid JSON (nested deeper than " + std::to_string(kMaxDepth) + ")");
    return true;
  };
  return json::parse(text, depth);
}

// ---------------------------------------------------------------- rule 1: the schema, by hand

// A value for a message: printable ASCII, short; lists and objects by their kind only.
std::string brief(const json& v) {
  if (v.is_object()) return "an object";
  if (v.is_array()) return "a list";
  std::string s = v.dump(-1, ' ', true, json::error_handler_t::replace);
  return s.size() <= 60 ? s : s.substr(0, 57) + "...";
}

const json& key(const json& object, const char* name, const std::string& where) {
  auto it = object.find(name);
  if (it == object.end()) throw ManifestError(where + " lacks \"" + name + "\"");
  return *it;
}

const json* optional_key(const json& object, const char* name) {
  auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

const json& object(const json& v, const std::string& where) {
  if (!v.is_object()) throw ManifestError(where + " must be an object, got " + brief(v));
  return v;
}

const json& list(const json& v, const std::string& where, size_t min_items, size_t max_items) {
  if (!v.is_array()) throw ManifestError(where + " must be a list, got " + brief(v));
  if (v.size() < min_items || v.size() > max_items) {
    const std::string allowed = max_items == min_items ? std::to_string(min_items)
                                : max_items == size_t(kNoMax) ? "at least " + std::to_string(min_items)
                                                              : std::to_string(min_items) + ".." + std::to_string(max_items);
    throw ManifestError(where + " has " + std::to_string(v.size()) + " items, the schema allows " + allowed);
  }
  return v;
}

// The contract's integer: written without a fraction (16, not 16.0: stricter than JSON Schema, as the
// Python runtime reads it), not true or false; inside lo..hi.
int64_t integer(const json& v, const std::string& where, int64_t lo, int64_t hi) {
  bool in_range = false;
  int64_t n = 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    in_range = u <= static_cast<uint64_t>(hi);
    n = in_range ? static_cast<int64_t>(u) : 0;
    in_range = in_range && n >= lo;
  } else if (v.is_number_integer()) {
    n = v.get<int64_t>();
    in_range = n >= lo && n <= hi;
  } else {
    throw ManifestError(where + " must be an integer, got " + brief(v));
  }
  if (!in_range) {
    throw ManifestError(where + " is " + brief(v) + (hi == kNoMax ? ", below " + std::to_string(lo)
                                                                  : ", outside " + std::to_string(lo) + ".." + std::to_string(hi)));
  }
  return n;
}

double number(const json& v, const std::string& where) {
  if (!v.is_number()) throw ManifestError(where + " must be a number, got " + brief(v));
  return v.get<double>();
}

std::string text(const json& v, const std::string& where) {
  if (!v.is_string()) throw ManifestError(where + " must be a string, got " + brief(v));
  return v.get<std::string>();
}

// JSON Schema's "maxLength" counts characters, not bytes.
size_t characters(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string one_of(const json& v, const std::string& where, std::initializer_list<const char*> allowed) {
  std::string names;
  for (const char* a : allowed) {
    if (v.is_string() && v.get<std::string>() == a) return a;
    names += (names.empty() ? "" : ", ") + std::string(a);
  }
  throw ManifestError(where + " is " + brief(v) + ", not one of " + names);
}

std::optional<int64_t> batch_size(const json& v, const std::string& where) {
  if (v.is_null()) return std::nullopt;
  return integer(v, where, 1, kMaxBatch);
}

bool sha256_hex(const json& v) {
  if (!v.is_string() || v.get<std::string>().size() != 64) return false;
  for (char c : v.get<std::string>()) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// Rule 2: every name the manifest gives is a plain file name inside the bundle folder.
std::string file_name(const json& v, const std::string& where) {
  const std::string name = text(v, where);
  if (!plain_name(name)) {
    throw ManifestError(where + " " + brief(v) + " is not a plain file name inside the bundle (letters, digits, "
                        "_ . + - only; no folder, no leading dot, not manifest.json)");
  }
  return name;
}

std::vector<FileEntry> files_of(const json& files) {
  object(files, "files");
  if (files.size() < 2) throw ManifestError("files lists " + std::to_string(files.size()) + " files, a bundle has at least 2");
  std::vector<FileEntry> out;
  for (auto it = files.begin(); it != files.end(); ++it) {
    FileEntry f;
    f.name = file_name(json(it.key()), "files key");   // rule 2
    const std::string at = "files." + f.name;
    object(*it, at);
    const json& sha = key(*it, "sha256", at);
    if (!sha256_hex(sha)) throw ManifestError(at + ".sha256 " + brief(sha) + " is not 64 lowercase hex digits");
    f.sha256 = sha.get<std::string>();
    f.bytes = static_cast<uint64_t>(integer(key(*it, "bytes", at), at + ".bytes", 0, kMaxFileBytes));
    out.push_back(std::move(f));
  }
  return out;
}

void config_of(const json& c, Manifest* m) {
  object(c, "trm_config");
  auto size = [&](const char* name, int64_t lo, int64_t hi) {
    return integer(key(c, name, "trm_config"), std::string("trm_config.") + name, lo, hi);
  };
  m->seq_len = size("seq_len", 1, 16384);
  m->vocab_size = size("vocab_size", 2, 1048576);
  m->hidden_size = size("hidden_size", 1, 16384);
  m->puzzle_emb_ndim = size("puzzle_emb_ndim", 0, 65536);
  m->puzzle_emb_len = size("puzzle_emb_len", 0, 4096);
  size("halt_max_steps", 1, kMaxSteps);
  struct Optional { const char* name; int64_t lo, hi; };
  for (const Optional& o : {Optional{"num_heads", 1, 1024}, Optional{"L_layers", 1, kNoMax}, Optional{"H_cycles", 1, kNoMax},
                            Optional{"L_cycles", 1, kNoMax}, Optional{"num_puzzle_identifiers", 0, kNoMax}}) {
    if (const json* v = optional_key(c, o.name)) {
      const int64_t n = integer(*v, std::string("trm_config.") + o.name, o.lo, o.hi);
      if (std::string(o.name) == "num_puzzle_identifiers") m->num_puzzle_identifiers = n;
    }
  }
  if (const json* v = optional_key(c, "expansion"); v && !(number(*v, "trm_config.expansion") > 0)) {
    throw ManifestError("trm_config.expansion must be above 0, got " + brief(*v));
  }
  if (const json* v = optional_key(c, "mlp_t"); v && !v->is_boolean()) {
    throw ManifestError("trm_config.mlp_t must be true or false, got " + brief(*v));
  }
  if (const json* v = optional_key(c, "pos_encodings")) one_of(*v, "trm_config.pos_encodings", {"rope", "learned", "none"});
}

// A name as the schema writes target, task.name and halting.policy: ^[a-z][a-z0-9_-]{0,31}$ (no '-'
// in a policy), matched whole.
std::string name_of(const json& v, const std::string& where, bool dash) {
  const std::string s = text(v, where);
  bool ok = !s.empty() && s.size() <= 32 && s[0] >= 'a' && s[0] <= 'z';
  for (char c : s) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || (dash && c == '-'));
  }
  if (!ok) {
    throw ManifestError(where + " " + brief(v) + " is not a name (a lowercase letter, then up to 31 of a-z 0-9 _" +
                        (dash ? " -" : "") + ")");
  }
  return s;
}

// The schema's cell_char: one printable ASCII character, space to '~'.
bool cell_char(const std::string& s) { return s.size() == 1 && s[0] >= ' ' && s[0] <= '~'; }

char cell_char_of(const json& v, const std::string& where) {
  if (!v.is_string() || !cell_char(v.get<std::string>())) {
    throw ManifestError(where + " is " + brief(v) + ", not one printable ASCII character");
  }
  return v.get<std::string>()[0];
}

std::string quoted(char c) { return std::string("'") + c + "'"; }

constexpr int64_t kMaxToken = 1048575;   // the schema's token_id: below its largest vocab_size
constexpr size_t kMaxCells = 4096;
constexpr size_t kMaxSkip = 32;

// task.encoding as the schema gives it ($defs/encoding); the rules between its parts and with
// trm_config are check_encoding's.
void encoding_fields(const json& enc, Encoding* e) {
  const std::string at = "task.encoding";
  object(enc, at);
  for (auto it = enc.begin(); it != enc.end(); ++it) {
    static const std::set<std::string> known = {"layout", "cells", "aliases", "skip", "pad", "eos", "colours"};
    if (!known.count(it.key())) {
      throw ManifestError(at + " has an unknown key " + brief(json(it.key())) +
                          " (an encoding gives layout, cells, aliases, skip, pad, eos, colours); re-export the bundle");
    }
  }
  const std::string layout = text(key(enc, "layout", at), at + ".layout");
  if (layout.empty() || characters(layout) > 128) throw ManifestError(at + ".layout must have 1..128 characters");
  const json* cells = optional_key(enc, "cells");
  for (const char* k : {"aliases", "skip"}) {
    if (!cells && enc.contains(k)) throw ManifestError(at + " has \"" + k + "\" but no \"cells\"");
  }
  if (cells) {
    list(*cells, at + ".cells", 1, kMaxCells);
    for (size_t i = 0; i < cells->size(); ++i) {
      const json& c = (*cells)[i];
      e->cells.push_back(c.is_null() ? Encoding::kNoCell : cell_char_of(c, at + ".cells[" + std::to_string(i) + "]"));
    }
  }
  if (const json* aliases = optional_key(enc, "aliases")) {
    object(*aliases, at + ".aliases");
    for (auto it = aliases->begin(); it != aliases->end(); ++it) {
      const char from = cell_char_of(json(it.key()), at + ".aliases key");
      e->aliases[from] = cell_char_of(*it, at + ".aliases." + it.key());
    }
  }
  if (const json* skip = optional_key(enc, "skip")) {
    e->skip = text(*skip, at + ".skip");
    if (e->skip.size() > kMaxSkip) throw ManifestError(at + ".skip has more than " + std::to_string(kMaxSkip) + " characters");
    for (char c : e->skip) {
      if (c != '\t' && !(c >= ' ' && c <= '~')) throw ManifestError(at + ".skip holds a character other than tab or printable ASCII");
    }
  }
  for (const char* k : {"pad", "eos"}) {
    if (const json* v = optional_key(enc, k)) integer(*v, at + "." + k, 0, kMaxToken);
  }
  if (const json* colours = optional_key(enc, "colours")) {
    std::set<int64_t> seen;
    for (const json& c : list(*colours, at + ".colours", 1, kMaxCells)) {
      if (!seen.insert(integer(c, at + ".colours[]", 0, kMaxToken)).second) {
        throw ManifestError(at + ".colours lists token " + brief(c) + " twice");
      }
    }
  }
}

// task: null, {"name": "tokens"} (token lists only), or a named task with its encoding. The name is
// a label for messages: what the runner does follows from the encoding alone.
Encoding encoding_of(const json* task) {
  Encoding e;
  if (!task || task->is_null()) return e;
  object(*task, "task");
  e.task = name_of(key(*task, "name", "task"), "task.name", true);
  if (const json* size = optional_key(*task, "size")) e.size = static_cast<int>(integer(*size, "task.size", 1, 64));
  const json* enc = optional_key(*task, "encoding");
  if (e.task == "tokens") {   // the schema's reserved name for "no task"
    if (enc) throw ManifestError("task \"tokens\" (token lists only) has an encoding; drop it or name the task");
    return e;
  }
  if (!enc) throw ManifestError("task lacks \"encoding\" (how the " + e.task + " task's text becomes tokens); re-export the bundle");
  encoding_fields(*enc, &e);
  return e;
}

std::vector<TensorSpec> tensors_of(const json& v, const std::string& where, size_t min_items, size_t max_items) {
  list(v, where, min_items, max_items);
  std::vector<TensorSpec> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    object(v[i], at);
    TensorSpec s;
    s.name = one_of(key(v[i], "name", at), at + ".name", kTensorNames);
    const json& shape = list(key(v[i], "shape", at), at + ".shape", 1, 3);
    for (const json& d : shape) {
      s.shape.push_back(d.is_string() && d.get<std::string>() == "batch" ? kBatchDim
                                                                           : integer(d, at + ".shape[]", 1, kMaxDim));
    }
    s.dtype = one_of(key(v[i], "dtype", at), at + ".dtype", kDtypes);
    out.push_back(std::move(s));
  }
  return out;
}

std::set<std::string> io_names_of(const json& v) {
  object(v, "io_names");
  std::set<std::string> names;
  for (auto it = v.begin(); it != v.end(); ++it) {
    names.insert(one_of(json(it.key()), "io_names key", kTensorNames));
    const std::string name = text(*it, "io_names." + it.key());
    if (name.empty() || characters(name) > 256) throw ManifestError("io_names." + it.key() + " must have 1..256 characters");
  }
  return names;
}

void halting_of(const json& h, Manifest* m) {
  object(h, "halting");
  const json& policy = key(h, "policy", "halting");
  if (!parse_halting(name_of(policy, "halting.policy", false), &m->halting)) {
    throw ManifestError("halting.policy is " + brief(policy) + ", a policy this runner does not implement (it runs " +
                        "fixed and q_halt); re-export the bundle with one of them");
  }
  m->max_steps = static_cast<int>(integer(key(h, "max_steps", "halting"), "halting.max_steps", 1, kMaxSteps));
  const json& t = key(h, "threshold", "halting");
  m->threshold = number(t, "halting.threshold");
  if (!(m->threshold > 0.0 && m->threshold < 1.0)) {
    throw ManifestError("halting.threshold is " + brief(t) + ", a probability strictly between 0 and 1");
  }
}

void init_bin_of(const json* init, Manifest* m) {
  if (!init || init->is_null()) return;
  object(*init, "init_bin");
  m->init_file = file_name(key(*init, "file", "init_bin"), "init_bin.file");   // rule 2
  one_of(key(*init, "dtype", "init_bin"), "init_bin.dtype", {"float32"});
  one_of(key(*init, "byte_order", "init_bin"), "init_bin.byte_order", {"little"});
  const json& arrays = list(key(*init, "arrays", "init_bin"), "init_bin.arrays", 2, kNoMax);
  for (size_t i = 0; i < arrays.size(); ++i) {
    const std::string at = "init_bin.arrays[" + std::to_string(i) + "]";
    object(arrays[i], at);
    InitArray a;
    a.name = one_of(key(arrays[i], "name", at), at + ".name", kInitArrays);
    for (const json& d : list(key(arrays[i], "shape", at), at + ".shape", 1, 2)) {
      a.shape.push_back(integer(d, at + ".shape[]", 1, kMaxDim));
    }
    a.offset = static_cast<uint64_t>(integer(key(arrays[i], "offset", at), at + ".offset", 0, kNoMax));
    if (const json* d = optional_key(arrays[i], "dtype")) {   // the array's own; init_bin.dtype otherwise
      a.float16 = one_of(*d, at + ".dtype", {"float32", "float16"}) == "float16";
    }
    m->init_arrays.push_back(std::move(a));
  }
}

// A permutation of 0..n-1 as a manifest writes it, or empty for null.
std::vector<int64_t> permutation_of(const json& v, const std::string& where, int64_t n) {
  if (v.is_null()) return {};
  std::vector<int64_t> out;
  std::vector<bool> seen(static_cast<size_t>(n), false);
  for (const json& x : list(v, where, static_cast<size_t>(n), static_cast<size_t>(n))) {
    const int64_t i = integer(x, where + "[]", 0, n - 1);
    if (seen[static_cast<size_t>(i)]) throw ManifestError(where + " is not a permutation of 0.." + std::to_string(n - 1));
    seen[static_cast<size_t>(i)] = true;
    out.push_back(i);
  }
  return out;
}

// A decision policy object (views.policy, views.recommended[i].policy): a policy the runner
// implements and its options, nothing else; agree only with consensus.
Decision decision_of(const json& p, const std::string& at) {
  object(p, at);
  const std::string name = name_of(key(p, "policy", at), at + ".policy", false);
  if (!known_policy(name)) {
    throw ManifestError(at + " is " + brief(p["policy"]) + ", a policy this runner does not implement (it runs "
                        "vote, best_q, consensus and best); re-export the bundle with one of them");
  }
  Decision d;
  d.policy = name;
  for (auto it = p.begin(); it != p.end(); ++it) {
    const std::string k = it.key(), here = at + "." + k;
    if (k == "policy") continue;
    if (k == "agree") d.agree = static_cast<int>(integer(*it, here, 1, kMaxViews));
    else if (k == "wave") d.wave = static_cast<int>(integer(*it, here, 1, kMaxViews));
    else if (k == "budget") d.budget = integer(*it, here, 1, int64_t(1) << 30);
    else if (k == "verify") {
      if (!it->is_boolean()) throw ManifestError(here + " must be true or false, got " + brief(*it));
      d.verify = it->get<bool>();
    } else {
      throw ManifestError(at + " has the key " + brief(json(k)) + ", which the schema does not allow");
    }
  }
  if (d.agree && !takes_agree(name)) throw ManifestError(at + ".agree belongs to the consensus and best policies");
  return d;
}

// views.recommended (optional): rows {from_views 2..1024, policy}, in increasing from_views, each once.
std::vector<Manifest::Recommended> recommended_of(const json* r) {
  std::vector<Manifest::Recommended> out;
  if (!r) return out;
  const json& rows = list(*r, "views.recommended", 0, 64);
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string at = "views.recommended[" + std::to_string(i) + "]";
    object(rows[i], at);
    for (auto it = rows[i].begin(); it != rows[i].end(); ++it) {
      if (it.key() != "from_views" && it.key() != "policy") {
        throw ManifestError(at + " has the key " + brief(json(it.key())) + ", which the schema does not allow");
      }
    }
    Manifest::Recommended row;
    row.from_views = static_cast<int>(integer(key(rows[i], "from_views", at), at + ".from_views", 2, kMaxViews));
    row.decision = decision_of(key(rows[i], "policy", at), at + ".policy");
    out.push_back(std::move(row));
  }
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i].from_views <= out[i - 1].from_views) {
      throw ManifestError("views.recommended must be in increasing from_views, each once (row " + std::to_string(i) +
                          " has from_views " + std::to_string(out[i].from_views) + " after " +
                          std::to_string(out[i - 1].from_views) + ")");
    }
  }
  return out;
}

// views.same (optional): a rule the runner implements and its tokens ({"rule": "path", "open", "path",
// "ends": [s, g]}); absent: equal cells.
Same same_of(const json* s, int64_t vocab_size) {
  Same out;
  if (!s) return out;
  object(*s, "views.same");
  out.rule = name_of(key(*s, "rule", "views.same"), "views.same.rule", false);
  if (!known_same(out.rule)) {
    throw ManifestError("views.same.rule is " + brief((*s)["rule"]) + ", a rule this runner does not implement (it "
                        "has cells and path); re-export the bundle with trm-edge of this runner's version");
  }
  const bool path = out.rule == "path";
  for (auto it = s->begin(); it != s->end(); ++it) {
    const std::string k = it.key();
    if (k == "rule") continue;
    if (!path || (k != "open" && k != "path" && k != "ends")) {
      throw ManifestError("views.same has the key " + brief(json(k)) + ", which its rule does not take");
    }
  }
  if (path) {
    out.open = integer(key(*s, "open", "views.same"), "views.same.open", 0, vocab_size - 1);
    out.path = integer(key(*s, "path", "views.same"), "views.same.path", 0, vocab_size - 1);
    const json& ends = list(key(*s, "ends", "views.same"), "views.same.ends", 2, 2);
    for (int i = 0; i < 2; ++i) out.ends[i] = integer(ends[i], "views.same.ends[" + std::to_string(i) + "]", 0, vocab_size - 1);
  }
  return out;
}

// views (optional): count, policy, list, recommended, same; rule 7: count <= the views listed, view 0 the
// identity, permutations of the positions and of the vocabulary, no view twice, policies the runner
// has (views.policy and every row of recommended, whose from_views increase).
void views_of(const json* v, Manifest* m) {
  if (!v) return;
  object(*v, "views");
  for (auto it = v->begin(); it != v->end(); ++it) {
    const std::string& k = it.key();
    if (k != "count" && k != "policy" && k != "list" && k != "recommended" && k != "same") {
      throw ManifestError("views has the key " + brief(json(k)) + ", which the schema does not allow");
    }
  }
  m->views_count = static_cast<int>(integer(key(*v, "count", "views"), "views.count", 1, kMaxViews));
  m->decision = decision_of(key(*v, "policy", "views"), "views.policy");
  m->recommended = recommended_of(optional_key(*v, "recommended"));
  m->same = same_of(optional_key(*v, "same"), m->vocab_size);
  const json& views = list(key(*v, "list", "views"), "views.list", 1, kMaxViews);
  m->views.clear();
  for (size_t i = 0; i < views.size(); ++i) {
    const std::string at = "views.list[" + std::to_string(i) + "]";
    object(views[i], at);
    View view;
    view.cells = permutation_of(key(views[i], "cells", at), at + ".cells", m->seq_len);
    view.tokens = permutation_of(key(views[i], "tokens", at), at + ".tokens", m->vocab_size);
    if (i == 0 && !view.identity()) throw ManifestError("views.list[0] must be the identity (cells and tokens null)");
    for (size_t j = 0; j < m->views.size(); ++j) {
      if (m->views[j].cells == view.cells && m->views[j].tokens == view.tokens) {
        throw ManifestError(at + " repeats views.list[" + std::to_string(j) + "]");
      }
    }
    m->views.push_back(std::move(view));
  }
  if (m->views_count > static_cast<int>(m->views.size())) {
    throw ManifestError("views.count " + std::to_string(m->views_count) + " is more than the " +
                        std::to_string(m->views.size()) + " views listed");
  }
}

// A view's name as the reference's identifiers.json writes it: the task id alone (the identity), or
// id|||t<dihedral 0-7>|||<10 digits, a permutation of 0-9: colour c becomes digit c>. False when it is
// neither (trm_edge/data/arc.py Augmentation.from_reference_name, strictly: 't', one digit, ten digits).
bool parse_view_name(const std::string& name, std::string* task, TaskView* view) {
  const std::string sep = "|||";
  const size_t a = name.find(sep);
  if (a == std::string::npos) {
    *task = name;
    return true;
  }
  const size_t b = name.find(sep, a + sep.size());
  if (b == std::string::npos || name.find('|', b + sep.size()) != std::string::npos) return false;
  const std::string trans = name.substr(a + sep.size(), b - a - sep.size()), colours = name.substr(b + sep.size());
  if (trans.size() != 2 || trans[0] != 't' || trans[1] < '0' || trans[1] > '7' || colours.size() != 10) return false;
  std::array<bool, 10> seen{};
  for (size_t c = 0; c < 10; ++c) {
    if (colours[c] < '0' || colours[c] > '9' || seen[colours[c] - '0']) return false;
    seen[colours[c] - '0'] = true;
    view->colours[c] = colours[c] - '0';
  }
  view->dihedral = trans[1] - '0';
  *task = name.substr(0, a);
  return true;
}

// task_rows (optional; the schema's part): {"source_rows": n >= 1, "dtype": "float32" or "float16", "tasks": [{"id":
// 1..256 characters without '|', "views": [{"row": 1..65535, "name": 1..300 characters, "source_row"?:
// >= 1}, ...]}, ...]}, no other keys. The rules between them are check_task_rows's (rule 8).
void task_rows_of(const json* tr, Manifest* m) {
  if (!tr) return;
  const std::string at = "task_rows";
  object(*tr, at);
  auto only = [](const json& o, const std::string& where, std::initializer_list<const char*> keys) {
    for (auto it = o.begin(); it != o.end(); ++it) {
      bool known = false;
      for (const char* k : keys) known = known || it.key() == k;
      if (!known) throw ManifestError(where + " has the key " + brief(json(it.key())) + ", which the schema does not allow");
    }
  };
  only(*tr, at, {"source_rows", "dtype", "tasks"});
  integer(key(*tr, "source_rows", at), at + ".source_rows", 1, kNoMax);
  m->task_rows_dtype = one_of(key(*tr, "dtype", at), at + ".dtype", {"float32", "float16"});
  const json& tasks = list(key(*tr, "tasks", at), at + ".tasks", 1, 65536);
  for (size_t i = 0; i < tasks.size(); ++i) {
    const std::string here = at + ".tasks[" + std::to_string(i) + "]";
    object(tasks[i], here);
    only(tasks[i], here, {"id", "views"});
    TaskRows t;
    t.id = text(key(tasks[i], "id", here), here + ".id");
    if (t.id.empty() || characters(t.id) > 256 || t.id.find('|') != std::string::npos) {
      throw ManifestError(here + ".id " + brief(tasks[i]["id"]) + " is not a task id (1..256 characters, no '|')");
    }
    const json& views = list(key(tasks[i], "views", here), here + ".views", 1, 65536);
    for (size_t j = 0; j < views.size(); ++j) {
      const std::string v_at = here + ".views[" + std::to_string(j) + "]";
      object(views[j], v_at);
      only(views[j], v_at, {"row", "name", "source_row"});
      TaskView v;
      v.row = integer(key(views[j], "row", v_at), v_at + ".row", 1, 65535);
      v.name = text(key(views[j], "name", v_at), v_at + ".name");
      if (v.name.empty() || characters(v.name) > 300) throw ManifestError(v_at + ".name must have 1..300 characters");
      if (const json* s = optional_key(views[j], "source_row")) integer(*s, v_at + ".source_row", 1, kNoMax);
      t.views.push_back(std::move(v));
    }
    m->task_rows.push_back(std::move(t));
  }
}

// The optional keys the runner does not use, checked all the same (a schema-valid manifest only).
void others_of(const json& j, Manifest* m) {
  if (const json* v = optional_key(j, "spelling")) text(*v, "spelling");
  if (const json* v = optional_key(j, "tools")) object(*v, "tools");
  if (const json* v = optional_key(j, "source"); v && !v->is_null()) text(*v, "source");
  if (const json* v = optional_key(j, "source_sha256"); v && !v->is_null() && !sha256_hex(*v)) {
    throw ManifestError("source_sha256 " + brief(*v) + " is not null or 64 lowercase hex digits");
  }
  if (const json* parity = optional_key(j, "parity")) {   // informative: what the export measured
    object(*parity, "parity");
    const json* diff = optional_key(*parity, "max_abs_diff");
    if (diff && diff->is_object() && diff->contains("logits") && (*diff)["logits"].is_number()) {
      m->parity_max_abs_logits = (*diff)["logits"].get<double>();
    }
  }
}

// The whole schema, top-level key by key; the runner also needs target executorch.
void check_schema(const json& j, Manifest* m, std::set<std::string>* io_names) {
  if (!j.is_object()) throw ManifestError("holds " + brief(j) + ", not a JSON object");
  const json* version = optional_key(j, "format_version");
  if (!version || !(version->is_number() && version->get<double>() == kFormatVersion)) {
    throw ManifestError("format_version " + (version ? brief(*version) : std::string("missing")) + ", this runner reads " +
                        std::to_string(kFormatVersion) + "; re-export the bundle with this trm-edge");
  }
  std::string missing;
  for (const char* k : {"target", "precision", "model_file", "batch", "files", "trm_config", "inputs", "outputs",
                        "io_names", "halting"}) {
    if (!j.contains(k)) missing += (missing.empty() ? "" : ", ") + std::string(k);
  }
  if (!missing.empty()) throw ManifestError("lacks " + missing + "; re-export the bundle");
  m->target = name_of(j["target"], "target", true);
  if (m->target != "executorch") {
    throw ManifestError("is a " + m->target + " bundle; this runner runs executorch bundles (step.pte)");
  }
  m->precision = one_of(j["precision"], "precision", kPrecisions);
  m->model_file = file_name(j["model_file"], "model_file");   // rule 2
  m->batch = batch_size(j["batch"], "batch");
  if (const json* v = optional_key(j, "max_batch")) m->max_batch = batch_size(*v, "max_batch");
  m->files = files_of(j["files"]);
  config_of(j["trm_config"], m);
  m->encoding = encoding_of(optional_key(j, "task"));
  m->inputs = tensors_of(j["inputs"], "inputs", 3, 4);
  m->outputs = tensors_of(j["outputs"], "outputs", 4, 4);
  *io_names = io_names_of(j["io_names"]);
  halting_of(j["halting"], m);
  views_of(optional_key(j, "views"), m);
  init_bin_of(optional_key(j, "init_bin"), m);
  task_rows_of(optional_key(j, "task_rows"), m);
  others_of(j, m);
}

// ---------------------------------------------------------------- rule 3: what the runner opens is listed

// model_file and init_bin.file, which the runner opens, and init.npz, which every bundle carries
// (the Python runtime opens it; the contract is the same for every runtime).
void check_listed(const Manifest& m) {
  if (!m.file(m.model_file)) {
    throw ManifestError("lists no sha256 for " + m.model_file + " (model_file) in files; re-export the bundle");
  }
  if (!m.init_file.empty() && !m.file(m.init_file)) {
    throw ManifestError("lists no sha256 for " + m.init_file + " (init_bin) in files; re-export the bundle");
  }
  if (!m.file("init.npz")) throw ManifestError("lists no sha256 for init.npz in files; re-export the bundle");
}

// ---------------------------------------------------------------- rule 6: agreement with trm_config

void check_config(const Manifest& m) {
  if (m.puzzle_emb_ndim > 0 && m.puzzle_emb_len * m.hidden_size < m.puzzle_emb_ndim) {
    throw ManifestError("trm_config: puzzle_emb_ndim does not fit puzzle_emb_len x hidden_size");
  }
  if (m.batch && m.max_batch && *m.max_batch != *m.batch) {
    throw ManifestError("max_batch " + std::to_string(*m.max_batch) + " differs from the fixed batch " +
                        std::to_string(*m.batch));
  }
}

std::vector<TensorSpec> step_inputs(const Manifest& m) {
  const int64_t B = m.batch ? *m.batch : kBatchDim, N = m.positions(), D = m.hidden_size;
  std::vector<TensorSpec> inputs = {{"tokens", {B, m.seq_len}, ""}};   // "": int64 or int32
  if (m.puzzle_emb_ndim > 0) inputs.push_back({"puzzle_emb", {B, m.puzzle_emb_ndim}, "float32"});
  inputs.push_back({"y", {B, N, D}, "float32"});
  inputs.push_back({"z", {B, N, D}, "float32"});
  return inputs;
}

std::vector<TensorSpec> step_outputs(const Manifest& m) {
  const int64_t B = m.batch ? *m.batch : kBatchDim, N = m.positions(), D = m.hidden_size;
  return {{"y_next", {B, N, D}, "float32"},
          {"z_next", {B, N, D}, "float32"},
          {"logits", {B, m.seq_len, m.vocab_size}, "float32"},
          {"q_halt", {B}, "float32"}};
}

// The step's inputs and outputs as trm_config gives them (trm_edge.runtime.manifest.step_io).
void check_io(const Manifest& m) {
  auto compare = [](const std::vector<TensorSpec>& got, const std::vector<TensorSpec>& want, const char* what) {
    std::string got_names, want_names;
    for (const auto& s : got) got_names += (got_names.empty() ? "" : ", ") + s.name;
    for (const auto& s : want) want_names += (want_names.empty() ? "" : ", ") + s.name;
    if (got_names != want_names) {
      throw ManifestError(std::string(what) + "s are [" + got_names + "], trm_config gives [" + want_names + "]");
    }
    for (size_t i = 0; i < want.size(); ++i) {
      if (got[i].shape != want[i].shape) {
        throw ManifestError(std::string(what) + " " + got[i].name + " has shape " + shape_text(got[i].shape) +
                            ", trm_config gives " + shape_text(want[i].shape));
      }
      const bool token_dtype = got[i].dtype == "int64" || got[i].dtype == "int32";
      if (want[i].dtype.empty() ? !token_dtype : got[i].dtype != want[i].dtype) {
        throw ManifestError(std::string(what) + " " + got[i].name + " has dtype " + got[i].dtype + ", expected " +
                            (want[i].dtype.empty() ? "int64 or int32" : want[i].dtype));
      }
    }
  };
  compare(m.inputs, step_inputs(m), "input");
  compare(m.outputs, step_outputs(m), "output");
}

void check_io_names(const Manifest& m, const std::set<std::string>& io_names) {
  std::set<std::string> want;
  std::string listed;
  for (const auto& specs : {step_inputs(m), step_outputs(m)}) {
    for (const auto& s : specs) want.insert(s.name);
  }
  for (const auto& name : want) listed += (listed.empty() ? "" : ", ") + name;
  if (io_names != want) throw ManifestError("io_names must name exactly " + listed);
}

// task.encoding in itself and with trm_config: the characters of cells distinct and at most
// vocab_size cells; every alias stands for a cell and is none itself; no skip character is a cell or
// an alias; pad, eos and colours inside the vocabulary. Builds the reading table, token_of.
void check_encoding(Manifest* m) {
  Encoding& e = m->encoding;
  const std::string at = "task.encoding";
  if (static_cast<int64_t>(e.cells.size()) > m->vocab_size) {
    throw ManifestError(at + ".cells lists " + std::to_string(e.cells.size()) + " tokens, more than trm_config.vocab_size " +
                        std::to_string(m->vocab_size));
  }
  for (size_t id = 0; id < e.cells.size(); ++id) {
    const char c = e.cells[id];
    if (c == Encoding::kNoCell) continue;
    const auto [it, fresh] = e.token_of.emplace(c, static_cast<int64_t>(id));
    if (!fresh) {
      throw ManifestError(at + ".cells gives " + quoted(c) + " to tokens " + std::to_string(it->second) + " and " +
                          std::to_string(id) + "; one character writes one token");
    }
  }
  for (const auto& [from, to] : e.aliases) {
    if (e.token_of.count(from)) throw ManifestError(at + ".aliases maps " + quoted(from) + ", which is a cell itself");
    auto it = e.token_of.find(to);
    if (it == e.token_of.end()) {
      throw ManifestError(at + ".aliases maps " + quoted(from) + " to " + quoted(to) + ", which is not a character of cells");
    }
  }
  for (const auto& [from, to] : e.aliases) e.token_of[from] = e.token_of.at(to);
  for (char c : e.skip) {
    if (e.token_of.count(c)) throw ManifestError(at + ".skip holds " + quoted(c) + ", which is a cell or an alias");
  }
}

// pad, eos and colours (the canvas encoding's token ids) lie inside the vocabulary.
void check_encoding_tokens(const json* task, const Manifest& m) {
  if (!task || !task->is_object() || !task->contains("encoding")) return;
  const json& enc = (*task)["encoding"];
  auto inside = [&](const json& v, const std::string& where) {
    if (v.get<int64_t>() >= m.vocab_size) {
      throw ManifestError("task.encoding." + where + " is token " + brief(v) + ", outside the vocabulary 0.." +
                          std::to_string(m.vocab_size - 1));
    }
  };
  for (const char* k : {"pad", "eos"}) {
    if (enc.contains(k)) inside(enc[k], k);
  }
  if (enc.contains("colours")) {
    for (const json& c : enc["colours"]) inside(c, "colours[]");
  }
}

// init_bin's arrays: float32 (float16 only for puzzle_emb_table), each once, the shapes trm_config gives,
// inside the listed size of init.bin; y_init and z_init present.
void check_init_layout(const Manifest& m) {
  if (m.init_file.empty()) return;
  const uint64_t size = m.file(m.init_file)->bytes;   // rule 3 holds; rule 4 compares it with the file
  const int64_t D = m.hidden_size, N = m.positions();
  std::set<std::string> seen;
  for (const InitArray& a : m.init_arrays) {
    if (a.float16 && a.name != "puzzle_emb_table") {
      throw ManifestError("init_bin." + a.name + " is float16; only puzzle_emb_table may be (y_init and z_init are float32)");
    }
    if (!seen.insert(a.name).second) throw ManifestError("init_bin lists " + a.name + " twice");
    const bool state = a.name != "puzzle_emb_table";
    const bool shape_ok = state ? (a.shape == std::vector<int64_t>{D} || a.shape == std::vector<int64_t>{N, D})
                                : (m.puzzle_emb_ndim > 0 && a.shape.size() == 2 && a.shape[1] == m.puzzle_emb_ndim);
    if (!shape_ok) {
      throw ManifestError("init_bin." + a.name + " has shape " + shape_text(a.shape) + ", trm_config gives " +
                          (state ? shape_text({D}) + " or " + shape_text({N, D})
                                 : m.puzzle_emb_ndim > 0 ? "[rows, " + std::to_string(m.puzzle_emb_ndim) + "]"
                                                         : std::string("no table (puzzle_emb_ndim 0)")));
    }
    uint64_t n = a.itemsize();   // bytes; dimensions are at most 2^30 and at most 2 of them: no overflow
    for (int64_t d : a.shape) n *= static_cast<uint64_t>(d);
    if (a.offset > size || n > size - a.offset) {
      throw ManifestError("init_bin." + a.name + " ends past the end of " + m.init_file + " (" + std::to_string(size) +
                          " bytes)");
    }
  }
  if (!seen.count("y_init") || !seen.count("z_init")) throw ManifestError("init_bin lacks y_init or z_init");
}

// Rule 8: task_rows. Its dtype is init_bin's puzzle_emb_table's; task ids distinct; every view's name is
// its task's (the id, or the id with a dihedral t0-t7 and a permutation of the colours 0-9); its row
// inside the shipped table (init_bin's puzzle_emb_table), not the blank row 0 (the schema's minimum); no
// row twice. Parses each name's augmentation into its view. trm_edge/runtime/manifest.py task_rows_errors, with its messages.
void check_task_rows(Manifest* m) {
  if (m->task_rows.empty()) return;
  const InitArray* table = m->init_array("puzzle_emb_table");
  if (!table) throw ManifestError("task_rows is given but the bundle ships no puzzle_emb_table; re-export with --identifiers");
  const std::string table_dtype = table->float16 ? "float16" : "float32";
  if (m->task_rows_dtype != table_dtype) {
    throw ManifestError("task_rows.dtype is " + m->task_rows_dtype + " but init_bin's puzzle_emb_table is " + table_dtype +
                        "; re-export the bundle");
  }
  const int64_t rows = table->shape[0];
  std::set<std::string> ids;
  std::set<int64_t> used;
  for (TaskRows& t : m->task_rows) {
    if (!ids.insert(t.id).second) throw ManifestError("task_rows names task " + brief(json(t.id)) + " twice");
    for (TaskView& v : t.views) {
      std::string task;
      if (!parse_view_name(v.name, &task, &v) || task != t.id) {
        const std::string name = v.name.size() <= 80 ? v.name : v.name.substr(0, 80);
        throw ManifestError("task_rows: view " + brief(json(name)) + " is not a view of task " + brief(json(t.id)) +
                            " (task, or task|||t<0-7>|||<a permutation of 0-9>)");
      }
      if (v.row >= rows || !used.insert(v.row).second) {
        throw ManifestError("task_rows: row " + std::to_string(v.row) + " of task " + brief(json(t.id)) +
                            " is outside the shipped table (1.." + std::to_string(rows - 1) + ") or given twice");
      }
    }
  }
}

}  // namespace

const FileEntry* Manifest::file(const std::string& name) const {
  for (const auto& f : files) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const TaskRows* Manifest::task(const std::string& id) const {
  for (const auto& t : task_rows) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

bool TaskView::identity() const {
  if (dihedral != 0) return false;
  for (int c = 0; c < 10; ++c) {
    if (colours[c] != c) return false;
  }
  return true;
}

const InitArray* Manifest::init_array(const std::string& name) const {
  for (const auto& a : init_arrays) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    s += (i ? ", " : "") + (shape[i] == kBatchDim ? std::string("batch") : std::to_string(shape[i]));
  }
  return s + "]";
}

bool read_manifest(const std::string& dir, Manifest* out, std::string* error) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    *error = dir + " is not a directory (give a bundle folder, as `trm-edge export` writes)";
    return false;
  }
  std::string text;
  if (!read_manifest_file(dir, &text, error)) return false;   // rule 1
  const std::string path = (fs::path(dir) / "manifest.json").string();
  Manifest m;
  m.dir = dir;
  try {
    const json j = parse_json(text);        // rule 1
    std::set<std::string> io_names;
    check_schema(j, &m, &io_names);         // rules 1 and 2
    check_listed(m);                        // rule 3
    check_config(m);                        // rule 6
    check_io(m);
    check_io_names(m, io_names);
    check_init_layout(m);
    check_task_rows(&m);                    // rule 8
    check_encoding(&m);
    check_encoding_tokens(optional_key(j, "task"), m);
  } catch (const json::exception& e) {      // parse errors, and number overflow ("1e400")
    *error = path + " is not valid JSON (" + e.what() + "); re-export the bundle";
    return false;
  } catch (const std::exception& e) {       // ManifestError: "is not UTF-8 text", "trm_config lacks ..."
    const std::string what = e.what();
    const bool verb = what.rfind("is ", 0) == 0 || what.rfind("holds ", 0) == 0 || what.rfind("lacks ", 0) == 0 ||
                      what.rfind("lists ", 0) == 0;
    *error = path + (verb ? " " : ": ") + what;
    return false;
  }
  *out = std::move(m);
  return true;
}

bool verify_files(const Manifest& m, bool check_sha256, std::string* error) {
  for (const FileEntry& f : m.files) {
    BundleFile file;
    if (!open_bundle_file(m.dir, f.name, &file, error)) return false;   // rule 4: regular, no symlink
    if (file.size() != f.bytes) {                                       // rule 4: the size before hashing
      *error = m.dir + ": " + f.name + " has " + std::to_string(file.size()) + " bytes, the manifest lists " +
               std::to_string(f.bytes) + " (corrupted or truncated); re-export or re-copy it";
      return false;
    }
    if (!check_sha256) continue;
    std::string sha;
    if (!sha256_bundle_file(file, &sha, error)) {                       // rule 5
      *error = m.dir + ": cannot hash " + f.name + ": " + *error;
      return false;
    }
    if (sha != f.sha256) {
      *error = m.dir + ": " + f.name + " does not match its sha256 in the manifest (corrupted or altered); "
               "re-export or re-copy it";
      return false;
    }
  }
  return true;
}

}  // namespace trm
