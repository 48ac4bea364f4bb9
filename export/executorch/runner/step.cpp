#include "step.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <type_traits>

#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor_ptr.h>
#include <executorch/runtime/core/tag.h>

#include "bundle_file.h"
#include "runtime_log.h"

namespace trm {
namespace {

using executorch::aten::ScalarType;
using executorch::extension::TensorPtr;
using executorch::extension::module::Module;
using executorch::runtime::Error;
using executorch::runtime::EValue;
using executorch::runtime::MethodMeta;
using executorch::runtime::Tag;
using executorch::runtime::TensorInfo;

const char* dtype_name(ScalarType t) {
  switch (t) {
    case ScalarType::Long: return "int64";
    case ScalarType::Int: return "int32";
    case ScalarType::Float: return "float32";
    case ScalarType::Half: return "float16";
    case ScalarType::BFloat16: return "bfloat16";
    case ScalarType::Char: return "int8";
    case ScalarType::Byte: return "uint8";
    case ScalarType::Bool: return "bool";
    default: return "another dtype";
  }
}

int64_t row_elements(const TensorSpec& spec) {
  int64_t n = 1;
  for (size_t d = 1; d < spec.shape.size(); ++d) n *= spec.shape[d];
  return n;
}

// One side (inputs or outputs) of forward against the manifest's specs. Records the smallest
// batch dimension the program reports in *program_batch.
bool check_side(const MethodMeta& meta, const std::vector<TensorSpec>& specs, bool inputs, const Manifest& m,
                int64_t* program_batch, std::string* error) {
  const char* side = inputs ? "input" : "output";
  const size_t count = inputs ? meta.num_inputs() : meta.num_outputs();
  const std::string pte = m.model_file + "'s forward";
  if (count != specs.size()) {
    *error = m.dir + ": " + pte + " has " + std::to_string(count) + " " + side + "s, the manifest lists " +
             std::to_string(specs.size()) + "; re-export the bundle";
    return false;
  }
  for (size_t i = 0; i < count; ++i) {
    const TensorSpec& spec = specs[i];
    auto tag = inputs ? meta.input_tag(i) : meta.output_tag(i);
    if (!tag.ok() || *tag != Tag::Tensor) {
      *error = m.dir + ": " + pte + " " + side + " " + std::to_string(i) + " (" + spec.name + ") is not a tensor";
      return false;
    }
    auto info = inputs ? meta.input_tensor_meta(i) : meta.output_tensor_meta(i);
    if (!info.ok()) {
      *error = m.dir + ": cannot read " + pte + " " + side + " " + std::to_string(i) + ": " + describe(info.error());
      return false;
    }
    const char* dtype = dtype_name(info->scalar_type());
    if (spec.dtype != dtype) {
      *error = m.dir + ": the manifest's " + side + " " + spec.name + " is " + spec.dtype + ", " + pte + " has " +
               dtype + " there; re-export the bundle";
      return false;
    }
    const auto sizes = info->sizes();
    std::vector<int64_t> program_shape(sizes.begin(), sizes.end());
    bool same = program_shape.size() == spec.shape.size() && !program_shape.empty();
    for (size_t d = 1; same && d < spec.shape.size(); ++d) same = program_shape[d] == spec.shape[d];
    if (same && m.batch) same = program_shape[0] == *m.batch;
    if (!same) {
      *error = m.dir + ": the manifest's " + side + " " + spec.name + " has shape " + shape_text(spec.shape) + ", " +
               pte + " has " + shape_text(program_shape) + " there (batch first); re-export the bundle";
      return false;
    }
    *program_batch = std::min(*program_batch, program_shape[0]);
  }
  return true;
}

}  // namespace

Step::~Step() = default;

std::unique_ptr<Step> Step::load(const Manifest& m, std::string* error) {
  init_runtime();
  take_runtime_log();
  {   // rule 4 again, just before ExecuTorch opens the file by its path: regular, in the folder, no symlink
    BundleFile f;
    if (!open_bundle_file(m.dir, m.model_file, &f, error)) return nullptr;
  }
  const std::string path = (std::filesystem::path(m.dir) / m.model_file).string();
  std::unique_ptr<Step> step(new Step());
  step->manifest_ = m;
  step->module_ = std::make_unique<Module>(path, Module::LoadMode::File);
  Module& module = *step->module_;

  const Error loaded = module.load(executorch::runtime::Program::Verification::InternalConsistency);
  if (loaded != Error::Ok) {
    *error = m.dir + ": ExecuTorch cannot load " + m.model_file + " (" + describe(loaded) + "); re-export or re-copy it";
    return nullptr;
  }
  auto meta = module.method_meta("forward");
  if (!meta.ok()) {
    *error = m.dir + ": " + m.model_file + " has no usable forward method (" + describe(meta.error()) + ")";
    return nullptr;
  }
  int64_t program_batch = std::numeric_limits<int64_t>::max();
  if (!check_side(*meta, m.inputs, true, m, &program_batch, error) ||
      !check_side(*meta, m.outputs, false, m, &program_batch, error)) {
    return nullptr;
  }
  if (m.batch) {
    step->largest_batch_ = *m.batch;
  } else {
    // A dynamic batch: the program records its upper bound as the batch dimension.
    if (m.max_batch && *m.max_batch > program_batch) {
      *error = m.dir + ": the manifest's max_batch is " + std::to_string(*m.max_batch) + ", " + m.model_file +
               "'s forward takes at most " + std::to_string(program_batch) + " rows; re-export the bundle";
      return nullptr;
    }
    step->largest_batch_ = m.max_batch ? *m.max_batch : program_batch;
  }
  const Error ready = module.load_forward();
  if (ready != Error::Ok) {
    *error = m.dir + ": ExecuTorch cannot initialise " + m.model_file + "'s forward (" + describe(ready) +
             "); is the XNNPACK backend linked in?";
    return nullptr;
  }
  return step;
}

bool Step::run(int64_t batch, const int64_t* tokens, const float* puzzle_emb, const float* y, const float* z,
               StepOutput* out, std::string* error) {
  if (batch < 1 || batch > largest_batch_) {
    *error = "a step takes 1 to " + std::to_string(largest_batch_) + " rows, got " + std::to_string(batch);
    return false;
  }
  if (!manifest_.batch || batch == *manifest_.batch) return run_exact(batch, tokens, puzzle_emb, y, z, out, error);

  // A fixed batch: pad with copies of the last row, run, keep the first `batch` rows.
  const int64_t fixed = *manifest_.batch;
  const int64_t L = manifest_.seq_len, E = manifest_.puzzle_emb_ndim, S = manifest_.positions() * manifest_.hidden_size;
  auto pad = [&](const auto* src, int64_t row) {
    std::vector<std::remove_const_t<std::remove_pointer_t<decltype(src)>>> v(src, src + batch * row);
    for (int64_t r = batch; r < fixed; ++r) v.insert(v.end(), src + (batch - 1) * row, src + batch * row);
    return v;
  };
  const auto t = pad(tokens, L);
  const auto ys = pad(y, S), zs = pad(z, S);
  std::vector<float> e;
  if (puzzle_emb) e = pad(puzzle_emb, E);
  if (!run_exact(fixed, t.data(), puzzle_emb ? e.data() : nullptr, ys.data(), zs.data(), out, error)) return false;
  out->y.resize(batch * S);
  out->z.resize(batch * S);
  out->logits.resize(batch * L * manifest_.vocab_size);
  out->q_halt.resize(batch);
  return true;
}

bool Step::run_exact(int64_t batch, const int64_t* tokens, const float* puzzle_emb, const float* y, const float* z,
                     StepOutput* out, std::string* error) {
  std::vector<TensorPtr> tensors;
  std::vector<EValue> inputs;
  for (const TensorSpec& spec : manifest_.inputs) {
    std::vector<executorch::aten::SizesType> sizes;
    for (int64_t d : spec.shape) sizes.push_back(static_cast<executorch::aten::SizesType>(d == kBatchDim ? batch : d));
    void* data = nullptr;
    ScalarType type = ScalarType::Float;
    if (spec.name == "tokens") {
      if (spec.dtype == "int32") {
        tokens32_.assign(tokens, tokens + batch * row_elements(spec));
        data = tokens32_.data();
        type = ScalarType::Int;
      } else {
        data = const_cast<int64_t*>(tokens);
        type = ScalarType::Long;
      }
    } else if (spec.name == "puzzle_emb") {
      data = const_cast<float*>(puzzle_emb);
    } else {
      data = const_cast<float*>(spec.name == "y" ? y : z);
    }
    if (!data) {
      *error = "the step needs " + spec.name + " and none was given";
      return false;
    }
    tensors.push_back(executorch::extension::make_tensor_ptr(std::move(sizes), data, type));
    inputs.emplace_back(*tensors.back());
  }

  take_runtime_log();
  auto result = module_->forward(inputs);
  if (!result.ok()) {
    *error = manifest_.model_file + ": forward failed (" + describe(result.error()) + ")";
    return false;
  }
  const std::vector<EValue>& outputs = *result;
  if (outputs.size() != manifest_.outputs.size()) {
    *error = manifest_.model_file + ": forward returned " + std::to_string(outputs.size()) + " values, expected " +
             std::to_string(manifest_.outputs.size());
    return false;
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const TensorSpec& spec = manifest_.outputs[i];
    const int64_t expected = batch * row_elements(spec);
    if (!outputs[i].isTensor() || outputs[i].toTensor().scalar_type() != ScalarType::Float ||
        outputs[i].toTensor().numel() != expected) {
      *error = manifest_.model_file + ": forward's output " + spec.name + " is not a float32 tensor of " +
               std::to_string(expected) + " values";
      return false;
    }
    const float* data = outputs[i].toTensor().const_data_ptr<float>();
    std::vector<float>* dst = spec.name == "y_next" ? &out->y
                              : spec.name == "z_next" ? &out->z
                              : spec.name == "logits" ? &out->logits
                                                      : &out->q_halt;
    dst->assign(data, data + expected);
  }
  return true;
}

}  // namespace trm
