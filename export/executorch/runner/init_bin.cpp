#include "init_bin.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "bundle_file.h"
#include "half.h"

namespace trm {
namespace {

float little_endian_half(const unsigned char* p) { return half_to_float(uint16_t(p[0] | p[1] << 8)); }

float little_endian_float(const unsigned char* p) {
  const uint32_t bits = uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

int64_t elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace

bool read_init_bin(const Manifest& m, InitState* out, std::string* error) {
  if (m.init_file.empty()) {
    *error = m.dir + ": the manifest has no init_bin (bundles exported before native runners carry only "
             "init.npz); re-export the bundle";
    return false;
  }
  // read_manifest checked the layout against trm_config and the listed size (rule 6), verify_files
  // the file itself (rule 4); the checks here keep this function safe on its own.
  const FileEntry* listed = m.file(m.init_file);
  BundleFile f;
  if (!open_bundle_file(m.dir, m.init_file, &f, error)) return false;
  if (!listed || f.size() != listed->bytes) {
    *error = m.dir + ": " + m.init_file + " is not the size the manifest lists; re-export or re-copy it";
    return false;
  }
  std::vector<unsigned char> bytes;
  if (!read_bundle_file(f, f.size(), &bytes, error)) {
    *error = m.dir + ": cannot read " + m.init_file + ": " + *error;
    return false;
  }

  const int64_t D = m.hidden_size, N = m.positions();
  InitState s;
  auto take = [&](const char* name, std::vector<float>* dst, bool required) -> bool {
    const InitArray* a = m.init_array(name);
    if (!a) {
      if (required) *error = m.dir + ": init_bin lists no " + name + "; re-export the bundle";
      return !required;
    }
    const bool state = std::string(name) != "puzzle_emb_table";
    const bool shape_ok = state ? (a->shape == std::vector<int64_t>{D} || a->shape == std::vector<int64_t>{N, D})
                                : (a->shape.size() == 2 && a->shape[1] == m.puzzle_emb_ndim && a->shape[0] >= 1);
    if (!shape_ok) {
      *error = m.dir + ": init_bin " + name + " has shape " + shape_text(a->shape) + ", trm_config gives " +
               (state ? shape_text({D}) : "[rows, " + std::to_string(m.puzzle_emb_ndim) + "]");
      return false;
    }
    if (a->float16 && state) {
      *error = m.dir + ": init_bin " + name + " is float16; only puzzle_emb_table may be (y_init and z_init are float32)";
      return false;
    }
    const uint64_t n = static_cast<uint64_t>(elements(a->shape)), size = a->itemsize();
    if (a->offset > bytes.size() || n > (bytes.size() - a->offset) / size) {
      *error = m.dir + ": " + m.init_file + " is too short for " + name + " (" + std::to_string(bytes.size()) +
               " bytes); re-export or re-copy it";
      return false;
    }
    dst->resize(n);
    for (uint64_t i = 0; i < n; ++i) {   // a float16 table is widened here, once
      const unsigned char* p = &bytes[a->offset + size * i];
      (*dst)[i] = a->float16 ? little_endian_half(p) : little_endian_float(p);
      if (!std::isfinite((*dst)[i])) {
        *error = m.dir + ": " + m.init_file + ": " + name + " holds NaN or infinite values; re-export from a good checkpoint";
        return false;
      }
    }
    if (!state) s.table_rows = a->shape[0];
    return true;
  };
  if (!take("y_init", &s.y_init, true) || !take("z_init", &s.z_init, true)) return false;
  if (m.puzzle_emb_ndim > 0 && !take("puzzle_emb_table", &s.puzzle_table, false)) return false;
  *out = std::move(s);
  return true;
}

std::vector<float> broadcast_state(const std::vector<float>& init, int64_t positions, int64_t hidden) {
  if (static_cast<int64_t>(init.size()) == positions * hidden) return init;
  std::vector<float> state(static_cast<size_t>(positions * hidden));
  for (int64_t p = 0; p < positions; ++p) std::copy(init.begin(), init.end(), state.begin() + p * hidden);
  return state;
}

}  // namespace trm

