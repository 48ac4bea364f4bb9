// Reading manifest.json. Parsing throws ManifestError internally; read_manifest turns every
// failure (ours and nlohmann's) into one line.
#include "manifest.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "sha256.h"

namespace trm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kFormatVersion = 1;

struct ManifestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const json& key(const json& object, const char* name, const std::string& where) {
  if (!object.is_object()) throw ManifestError(where + " is not an object");
  auto it = object.find(name);
  if (it == object.end()) throw ManifestError(where + " lacks \"" + name + "\"");
  return *it;
}

int64_t integer(const json& value, const std::string& where) {
  if (!value.is_number_integer()) throw ManifestError(where + " must be an integer, got " + value.dump());
  return value.get<int64_t>();
}

std::string text(const json& value, const std::string& where) {
  if (!value.is_string()) throw ManifestError(where + " must be a string, got " + value.dump());
  return value.get<std::string>();
}

std::optional<int64_t> optional_integer(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return std::nullopt;
  return integer(*it, name);
}

std::vector<int64_t> shape_of(const json& value, const std::string& where, bool batch_allowed) {
  if (!value.is_array()) throw ManifestError(where + " must be a list, got " + value.dump());
  std::vector<int64_t> shape;
  for (const json& d : value) {
    if (batch_allowed && d.is_string() && d.get<std::string>() == "batch") {
      shape.push_back(kBatchDim);
    } else if (d.is_number_integer() && d.get<int64_t>() >= 0) {
      shape.push_back(d.get<int64_t>());
    } else {
      throw ManifestError(where + " has a bad dimension " + d.dump());
    }
  }
  return shape;
}

std::vector<TensorSpec> specs(const json& list, const std::string& where) {
  if (!list.is_array()) throw ManifestError(where + " must be a list");
  std::vector<TensorSpec> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    TensorSpec s;
    s.name = text(key(list[i], "name", at), at + ".name");
    s.shape = shape_of(key(list[i], "shape", at), where + " " + s.name + " shape", true);
    s.dtype = text(key(list[i], "dtype", at), where + " " + s.name + " dtype");
    out.push_back(std::move(s));
  }
  return out;
}

// "d + 1" -> 1
int64_t digit_offset(const std::string& rule) {
  std::istringstream in(rule);
  char d = 0, plus = 0;
  int64_t offset = 0;
  if (!(in >> d >> plus >> offset) || d != 'd' || plus != '+') {
    throw ManifestError("task encoding digit rule \"" + rule + "\" is not \"d + N\"");
  }
  return offset;
}

Encoding encoding_of(const json& task) {
  Encoding e;
  if (task.is_null()) return e;
  e.task = text(key(task, "name", "task"), "task.name");
  auto enc = task.find("encoding");
  if (enc == task.end() || !enc->is_object()) return e;
  if (e.task == "sudoku") {
    e.size = static_cast<int>(integer(key(task, "size", "task"), "task.size"));
    e.blank = integer(key(*enc, "blank", "task.encoding"), "task.encoding.blank");
    e.digit_offset = digit_offset(text(key(*enc, "digit", "task.encoding"), "task.encoding.digit"));
    return e;
  }
  for (auto it = enc->begin(); it != enc->end(); ++it) {   // one-character keys: a character map
    if (it.key().size() == 1 && it->is_number_integer()) e.chars[it.key()[0]] = it->get<int64_t>();
  }
  return e;
}

// The step's inputs and outputs as trm_config gives them (trm_edge.runtime.manifest.step_io).
void check_io(const Manifest& m) {
  const int64_t B = m.batch ? *m.batch : kBatchDim;
  const int64_t L = m.seq_len, N = m.positions(), D = m.hidden_size, V = m.vocab_size;
  std::vector<TensorSpec> inputs = {{"tokens", {B, L}, ""}};
  if (m.puzzle_emb_ndim > 0) inputs.push_back({"puzzle_emb", {B, m.puzzle_emb_ndim}, "float32"});
  inputs.push_back({"y", {B, N, D}, "float32"});
  inputs.push_back({"z", {B, N, D}, "float32"});
  const std::vector<TensorSpec> outputs = {{"y_next", {B, N, D}, "float32"},
                                           {"z_next", {B, N, D}, "float32"},
                                           {"logits", {B, L, V}, "float32"},
                                           {"q_halt", {B}, "float32"}};
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
  compare(m.inputs, inputs, "input");
  compare(m.outputs, outputs, "output");
}

void parse(const json& j, Manifest* m) {
  if (!j.is_object()) throw ManifestError("is not a JSON object");
  const auto version = j.find("format_version");
  if (version == j.end() || !version->is_number_integer() || version->get<int64_t>() != kFormatVersion) {
    throw ManifestError("format_version " + (version == j.end() ? std::string("missing") : version->dump()) +
                        ", this runner reads " + std::to_string(kFormatVersion));
  }
  std::string missing;
  for (const char* k : {"target", "precision", "model_file", "files", "trm_config", "inputs", "outputs", "halting"}) {
    if (!j.contains(k)) missing += (missing.empty() ? "" : ", ") + std::string(k);
  }
  if (!missing.empty()) throw ManifestError("lacks " + missing + "; re-export the bundle");
  m->target = text(j["target"], "target");
  if (m->target != "executorch") {
    throw ManifestError("is a " + m->target + " bundle; this runner runs executorch bundles (step.pte)");
  }
  m->precision = text(j["precision"], "precision");
  m->model_file = text(j["model_file"], "model_file");
  m->batch = optional_integer(j, "batch");
  m->max_batch = optional_integer(j, "max_batch");
  if ((m->batch && *m->batch < 1) || (m->max_batch && *m->max_batch < 1)) {
    throw ManifestError("batch and max_batch must be at least 1");
  }

  const json& files = j["files"];
  if (!files.is_object()) throw ManifestError("files must be an object of name -> {sha256, bytes}");
  for (auto it = files.begin(); it != files.end(); ++it) {
    FileEntry f;
    f.name = it.key();
    if (f.name.empty() || f.name.find('/') != std::string::npos || f.name == "." || f.name == "..") {
      throw ManifestError("files lists a bad name \"" + f.name + "\"");
    }
    f.sha256 = text(key(*it, "sha256", "files." + f.name), "files." + f.name + ".sha256");
    const int64_t bytes = integer(key(*it, "bytes", "files." + f.name), "files." + f.name + ".bytes");
    if (bytes < 0) throw ManifestError("files." + f.name + ".bytes is negative");
    f.bytes = static_cast<uint64_t>(bytes);
    m->files.push_back(std::move(f));
  }

  const json& c = j["trm_config"];
  m->seq_len = integer(key(c, "seq_len", "trm_config"), "trm_config.seq_len");
  m->vocab_size = integer(key(c, "vocab_size", "trm_config"), "trm_config.vocab_size");
  m->hidden_size = integer(key(c, "hidden_size", "trm_config"), "trm_config.hidden_size");
  m->puzzle_emb_ndim = c.contains("puzzle_emb_ndim") ? integer(c["puzzle_emb_ndim"], "trm_config.puzzle_emb_ndim") : 0;
  if (m->puzzle_emb_ndim > 0) {
    m->puzzle_emb_len = integer(key(c, "puzzle_emb_len", "trm_config"), "trm_config.puzzle_emb_len");
  }
  if (c.contains("num_puzzle_identifiers")) {
    m->num_puzzle_identifiers = integer(c["num_puzzle_identifiers"], "trm_config.num_puzzle_identifiers");
  }
  if (m->seq_len < 1 || m->vocab_size < 1 || m->hidden_size < 1 || m->puzzle_emb_ndim < 0 || m->puzzle_emb_len < 0) {
    throw ManifestError("trm_config has a size below 1");
  }

  m->encoding = encoding_of(j.contains("task") ? j["task"] : json());
  m->inputs = specs(j["inputs"], "inputs");
  m->outputs = specs(j["outputs"], "outputs");
  check_io(*m);

  const json& h = j["halting"];
  const std::string policy = h.contains("policy") ? text(h["policy"], "halting.policy") : "q_halt";
  if (!parse_halting(policy, &m->halting)) throw ManifestError("halting.policy \"" + policy + "\" is not q_halt or fixed");
  m->max_steps = static_cast<int>(integer(key(h, "max_steps", "halting"), "halting.max_steps"));
  const json& t = key(h, "threshold", "halting");
  if (!t.is_number()) throw ManifestError("halting.threshold must be a number");
  m->threshold = t.get<double>();
  if (m->max_steps < 1 || !(m->threshold > 0.0 && m->threshold < 1.0)) {
    throw ManifestError("halting needs max_steps >= 1 and 0 < threshold < 1");
  }

  auto parity = j.find("parity");   // informative only: never fails a bundle
  if (parity != j.end() && parity->is_object() && parity->contains("max_abs_diff")) {
    const json& diff = (*parity)["max_abs_diff"];
    if (diff.is_object() && diff.contains("logits") && diff["logits"].is_number()) {
      m->parity_max_abs_logits = diff["logits"].get<double>();
    }
  }

  auto init = j.find("init_bin");
  if (init != j.end() && !init->is_null()) {
    m->init_file = text(key(*init, "file", "init_bin"), "init_bin.file");
    if (init->contains("dtype") && (*init)["dtype"] != "float32") throw ManifestError("init_bin.dtype is not float32");
    if (init->contains("byte_order") && (*init)["byte_order"] != "little") {
      throw ManifestError("init_bin.byte_order is not little");
    }
    const json& arrays = key(*init, "arrays", "init_bin");
    if (!arrays.is_array()) throw ManifestError("init_bin.arrays must be a list");
    for (const json& a : arrays) {
      InitArray array;
      array.name = text(key(a, "name", "init_bin.arrays[]"), "init_bin.arrays[].name");
      array.shape = shape_of(key(a, "shape", "init_bin." + array.name), "init_bin." + array.name + ".shape", false);
      const int64_t offset = integer(key(a, "offset", "init_bin." + array.name), "init_bin." + array.name + ".offset");
      if (offset < 0) throw ManifestError("init_bin." + array.name + ".offset is negative");
      array.offset = static_cast<uint64_t>(offset);
      m->init_arrays.push_back(std::move(array));
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
  const fs::path path = fs::path(dir) / "manifest.json";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    *error = dir + " is not a directory (give a bundle folder, as `trm-edge export` writes)";
    return false;
  }
  if (!fs::is_regular_file(path, ec)) {
    *error = dir + " is not a bundle: it has no manifest.json (export one with `trm-edge export`)";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (!in) {
    *error = "cannot read " + path.string();
    return false;
  }
  Manifest m;
  m.dir = dir;
  try {
    const json j = json::parse(buffer.str());
    parse(j, &m);
  } catch (const json::parse_error& e) {
    *error = path.string() + " is not valid JSON (" + e.what() + "); re-export the bundle";
    return false;
  } catch (const std::exception& e) {   // ManifestError, or a nlohmann type/range error
    *error = path.string() + ": " + e.what();
    return false;
  }
  *out = std::move(m);
  return true;
}

bool verify_files(const Manifest& m, std::string* error) {
  for (const char* needed : {"model_file", "init_bin"}) {
    const std::string& name = std::string(needed) == "model_file" ? m.model_file : m.init_file;
    if (!name.empty() && !m.file(name)) {
      *error = m.dir + ": the manifest lists no sha256 for " + name + " (" + needed + "); re-export the bundle";
      return false;
    }
  }
  for (const FileEntry& f : m.files) {
    const fs::path path = fs::path(m.dir) / f.name;
    std::error_code ec;
    if (!fs::exists(path, ec)) {
      *error = m.dir + ": " + f.name + " is missing (the manifest lists it); copy the whole bundle";
      return false;
    }
    if (!fs::is_regular_file(path, ec)) {
      *error = m.dir + ": " + f.name + " is not a regular file; this runner checks files only";
      return false;
    }
    const uint64_t size = fs::file_size(path, ec);
    std::string sha;
    if (ec || (size == f.bytes && !sha256_file(path.string(), &sha, error))) {
      if (ec) *error = "cannot read " + path.string();
      return false;
    }
    if (size != f.bytes || sha != f.sha256) {
      *error = m.dir + ": " + f.name + " does not match its sha256 in the manifest (corrupted or truncated: " +
               std::to_string(size) + " bytes, expected " + std::to_string(f.bytes) + "); re-export or re-copy it";
      return false;
    }
  }
  return true;
}

}  // namespace trm
