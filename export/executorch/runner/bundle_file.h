// Opening a bundle's files so that nothing outside the bundle folder is ever read and nothing
// blocks: the rules 2 and 4 of export/README.md (the same as trm_edge/runtime/manifest.py).
//
//   BundleFile f;
//   if (!open_bundle_file(dir, "init.bin", &f, &error)) ...   // a regular file in dir, no symlink
//   f.size(); read_bundle_file(f, f.size(), &bytes, &error);
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace trm {

// Rule 2: a plain file name inside the bundle folder, the schema's pattern
// ^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,127}$ (no folder part, no "..", no absolute path, no leading dot)
// and not "manifest.json".
bool plain_name(const std::string& name);

// An open, read-only file descriptor (closed on destruction).
class BundleFile {
 public:
  BundleFile() = default;
  ~BundleFile();
  BundleFile(const BundleFile&) = delete;
  BundleFile& operator=(const BundleFile&) = delete;

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }

 private:
  friend bool open_bundle_file(const std::string&, const std::string&, BundleFile*, std::string*);
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Rule 4: dir/name is a regular file and no symlink (lstat before opening; then opened with
// O_NOFOLLOW | O_NONBLOCK, so a FIFO or a device never blocks, and checked again with fstat).
// `name` must be a plain name (rule 2) or manifest.json. False with a one-line *error ("<dir>: <name> is missing ...").
bool open_bundle_file(const std::string& dir, const std::string& name, BundleFile* out, std::string* error);

// Reads `size` bytes from the start of the file; false when it holds fewer (or cannot be read).
bool read_bundle_file(const BundleFile& f, uint64_t size, std::vector<unsigned char>* out, std::string* error);

// sha256 of the whole file as 64 lowercase hex digits.
bool sha256_bundle_file(const BundleFile& f, std::string* hex, std::string* error);

}  // namespace trm
