#include "inferspeed/flush.hpp"

#include <unistd.h>

#include <stdexcept>

namespace inferspeed {

namespace {
size_t cache_line_bytes() {
#ifdef _SC_LEVEL1_DCACHE_LINESIZE
  const long line = sysconf(_SC_LEVEL1_DCACHE_LINESIZE);
  if (line >= 16 && line <= 1024) return static_cast<size_t>(line);
#endif
  return 64;
}
}  // namespace

CacheFlusher::CacheFlusher(size_t bytes, size_t line_bytes)
    : bytes_(bytes), line_(line_bytes != 0 ? line_bytes : cache_line_bytes()) {
  if (bytes_ == 0) throw std::invalid_argument("cache flush buffer must not be empty");
  buffer_.reset(new unsigned char[bytes_]);
  // Touch every page now, so the first flush does not also pay the page faults.
  for (size_t i = 0; i < bytes_; i += line_) buffer_[i] = 0;
}

void CacheFlusher::flush() noexcept {
  // volatile: the stores must really happen although nobody reads the buffer afterwards.
  volatile unsigned char* p = buffer_.get();
  for (size_t i = 0; i < bytes_; i += line_) p[i] = static_cast<unsigned char>(p[i] + 1);
}

}  // namespace inferspeed
