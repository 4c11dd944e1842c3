// Internal helpers shared by the ring and the engine's control segment.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace sor::detail {

// Returns the shm_open path of segment `name` ("/name").
inline std::string shm_path(std::string_view name) {
  std::string path(1, '/');
  path.append(name);
  return path;
}

// Returns the inode of an open segment (0 when fstat fails).
inline std::uint64_t segment_inode(int fd) noexcept {
  struct stat st {};
  return fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_ino) : 0;
}

// Removes segment `name` only while it is still the segment with `inode`: after a takeover
// the name may belong to a successor, which must not lose it.
inline void unlink_if_same_inode(std::string_view name, std::uint64_t inode) noexcept {
  const std::string path = shm_path(name);
  const int fd = shm_open(path.c_str(), O_RDONLY, 0);
  if (fd < 0) return;
  const bool same = segment_inode(fd) == inode;
  ::close(fd);
  if (same) shm_unlink(path.c_str());
}

}  // namespace sor::detail
