#include "bundle_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sha256.h"

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

namespace trm {
namespace {

bool name_char(char c, bool first) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') return true;
  return !first && (c == '.' || c == '+' || c == '-');
}

// What lstat/fstat found, for a message; empty for a regular file.
const char* not_regular(mode_t mode) {
  if (S_ISREG(mode)) return "";
  if (S_ISLNK(mode)) return "a symlink";
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// read() until `size` bytes or the end of the file, retrying on EINTR; -1 on an error.
ssize_t read_fully(int fd, unsigned char* data, size_t size, off_t offset) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pread(fd, data + done, size - done, offset + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

}  // namespace

bool plain_name(const std::string& name) {
  if (name.empty() || name.size() > 128 || name == "manifest.json") return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!name_char(name[i], i == 0)) return false;
  }
  return true;
}

BundleFile::~BundleFile() {
  if (fd_ >= 0) close(fd_);
}

bool open_bundle_file(const std::string& dir, const std::string& name, BundleFile* out, std::string* error) {
  if (!plain_name(name) && name != "manifest.json") {   // names are checked on reading; never join anything else
    *error = dir + ": \"" + name + "\" is not a plain file name inside the bundle";
    return false;
  }
  const std::string path = dir + "/" + name;
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    *error = errno == ENOENT ? dir + ": " + name + " is missing (the manifest lists it); copy the whole bundle"
                             : dir + ": cannot read " + name + " (" + std::strerror(errno) + ")";
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = dir + ": " + name + " is " + not_regular(st.st_mode) +
             ", not a regular file; a bundle holds regular files only (copy the file itself)";
    return false;
  }
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *error = dir + ": cannot open " + name + " (" + std::strerror(errno) + "); re-copy the bundle";
    return false;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {   // replaced between lstat and open
    close(fd);
    *error = dir + ": " + name + " is not a regular file; a bundle holds regular files only";
    return false;
  }
  if (out->fd_ >= 0) close(out->fd_);
  out->fd_ = fd;
  out->size_ = static_cast<uint64_t>(st.st_size);
  return true;
}

bool read_bundle_file(const BundleFile& f, uint64_t size, std::vector<unsigned char>* out, std::string* error) {
  out->resize(static_cast<size_t>(size));
  const ssize_t n = read_fully(f.fd(), out->data(), out->size(), 0);
  if (n < 0 || static_cast<uint64_t>(n) != size) {
    *error = n < 0 ? std::string("cannot read it (") + std::strerror(errno) + ")"
                   : "it ends after " + std::to_string(n) + " of " + std::to_string(size) + " bytes";
    return false;
  }
  return true;
}

bool sha256_bundle_file(const BundleFile& f, std::string* hex, std::string* error) {
  Sha256 sha;
  std::vector<unsigned char> chunk(1 << 20);
  off_t offset = 0;
  for (;;) {
    const ssize_t n = read_fully(f.fd(), chunk.data(), chunk.size(), offset);
    if (n < 0) {
      *error = std::string("cannot read it (") + std::strerror(errno) + ")";
      return false;
    }
    if (n == 0) break;
    sha.update(chunk.data(), static_cast<size_t>(n));
    offset += n;
  }
  *hex = sha.hex_digest();
  return true;
}

}  // namespace trm
