// A bundle's manifest.json (format_version 1) as the runner needs it, checked on reading.
// The contract is export/bundle.schema.json and the rules 1-8 of export/README.md, the same ones
// trm_edge/runtime/manifest.py applies.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "halt.h"
#include "views.h"

namespace trm {

constexpr int64_t kBatchDim = -1;   // "batch" in a manifest shape
constexpr int kMaxSteps = 1024;     // the schema's bound on halting.max_steps (and --max-steps)

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;   // kBatchDim marks the batch dimension
  std::string dtype;            // "int64", "int32", "float32"
};

struct FileEntry {
  std::string name;
  std::string sha256;
  uint64_t bytes = 0;
};

struct InitArray {
  std::string name;             // y_init, z_init, puzzle_emb_table
  std::vector<int64_t> shape;
  uint64_t offset = 0;          // bytes from the start of init.bin
  bool float16 = false;         // "dtype": "float16" (IEEE half; puzzle_emb_table only), else float32
  uint64_t itemsize() const { return float16 ? 2 : 4; }
};

// How puzzle text becomes tokens and back (manifest["task"]["encoding"]), as data: the runner has no
// code of its own for any task. Characters are printable ASCII (the schema's), so one byte each.
struct Encoding {
  static constexpr char kNoCell = '\0';   // a token no character writes (pad)

  std::string task;                   // task.name, for messages only; "" without a task
  int size = 0;                       // task.size (the grid's side), 0 where the task gives none
  std::vector<char> cells;            // token id -> the character that writes it, or kNoCell; empty: no text form
  std::map<char, char> aliases;       // more characters read, each standing for a character of cells
  std::string skip;                   // characters ignored between cells on reading
  std::map<char, int64_t> token_of;   // reading: a character of cells or aliases -> its token id

  bool has_text() const { return !cells.empty(); }
};

// One view of a task in task_rows (rule 8): a row of the shipped puzzle table and the augmentation its
// name gives (the reference's descriptor: the task id, or id|||t<dihedral>|||<10 digits>), applied
// colours first (colour c becomes colours[c]), then the dihedral transform (trm_edge/data/arc.py).
struct TaskView {
  int64_t row = 0;                  // into init.bin's puzzle_emb_table: 1..rows-1
  std::string name;
  int dihedral = 0;                 // 0..7, trm_edge/data/dihedral.py's ids
  std::array<int, 10> colours{{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}};
  bool identity() const;
};

struct TaskRows {
  std::string id;                   // the ARC task id
  std::vector<TaskView> views;      // in the manifest's order, the identity first as export writes it
};

struct Manifest {
  std::string dir;                    // the bundle directory it was read from
  std::string target, precision, model_file;
  std::optional<int64_t> batch;       // a fixed batch, or none (dynamic)
  std::optional<int64_t> max_batch;   // the largest batch the model file takes, or none (any)
  std::vector<FileEntry> files;

  // trm_config
  int64_t seq_len = 0, vocab_size = 0, hidden_size = 0;
  int64_t puzzle_emb_ndim = 0, puzzle_emb_len = 0, num_puzzle_identifiers = 0;
  int64_t positions() const { return seq_len + (puzzle_emb_ndim > 0 ? puzzle_emb_len : 0); }

  Encoding encoding;
  std::vector<TensorSpec> inputs, outputs;   // in call order
  Halting halting = Halting::kQHalt;
  int max_steps = 16;
  double threshold = 0.5;

  // views (rule 7): the default count and decision policy an app runs, and the views as data;
  // a manifest without them lists the identity only
  int views_count = 1;
  Decision decision;
  std::vector<View> views{View{}};
  // views.recommended: what K views run when no policy is given (TrmRunner::decision_for), rows in
  // increasing from_views, each once; empty: views.policy for every K
  struct Recommended {
    int from_views = 2;
    Decision decision;
  };
  std::vector<Recommended> recommended;
  Same same;                          // views.same: when two views' answers are the same answer

  // task_rows (rule 8, ARC bundles): the puzzle table's rows shipped per task; empty without
  std::vector<TaskRows> task_rows;
  std::string task_rows_dtype;        // task_rows.dtype: "float32" or "float16", init_bin's table's (rule 8)
  const TaskRows* task(const std::string& id) const;

  std::optional<double> parity_max_abs_logits;   // what the export measured against PyTorch fp32

  std::string init_file;                     // "init.bin", or empty when the bundle has none
  std::vector<InitArray> init_arrays;

  const FileEntry* file(const std::string& name) const;
  const InitArray* init_array(const std::string& name) const;
};

// Reads and checks dir/manifest.json before anything else is opened: rule 1 (a regular file of at
// most 16 MiB, UTF-8 JSON, valid against the schema), 2 (plain file names), 3 (model_file and
// init_bin.file listed in files), 6 (inputs, outputs, io_names and the init_bin layout agree with
// trm_config) and 8 (task_rows); also an executorch target. False with a one-line *error otherwise.
bool read_manifest(const std::string& dir, Manifest* out, std::string* error);

// Rules 4 and 5 for every file the manifest lists: a regular file in the bundle folder, no symlink,
// of the listed size (compared before hashing) and, with check_sha256, of the listed sha256.
bool verify_files(const Manifest& m, bool check_sha256, std::string* error);

// "[batch, 97, 128]"
std::string shape_text(const std::vector<int64_t>& shape);

}  // namespace trm
