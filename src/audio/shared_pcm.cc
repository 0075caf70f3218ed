#include "audio/shared_pcm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace steno::audio {
namespace {

constexpr int kSeals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;

Error IoError(const std::string& what) {
  return Error(ErrorKind::kIo, "pcm_io", what + ": " + std::strerror(errno));
}

}  // namespace

Result<std::shared_ptr<const SharedPcm>> SharedPcm::Create(const std::vector<float>& samples) {
  const int fd = memfd_create("steno-pcm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    if (errno == ENOSYS || errno == EINVAL) {
      return Error(ErrorKind::kUnavailable, "no_memfd", "no memfd_create on this system");
    }
    return IoError("memfd_create");
  }
  std::shared_ptr<const SharedPcm> pcm(new SharedPcm(fd, samples.size()));
  const char* data = reinterpret_cast<const char*>(samples.data());
  const size_t bytes = samples.size() * sizeof(float);
  for (size_t off = 0; off < bytes;) {
    const ssize_t w = write(fd, data + off, bytes - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return IoError("writing decoded audio to memory");
    off += static_cast<size_t>(w);
  }
  if (fcntl(fd, F_ADD_SEALS, kSeals) != 0) return IoError("sealing decoded audio");
  return pcm;
}

SharedPcm::~SharedPcm() {
  close(fd_);
}

Result<std::vector<float>> ReadSharedPcm(int fd, size_t samples) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return IoError("the decoded audio's memory file");
  const int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & kSeals) != kSeals ||
      static_cast<uint64_t>(st.st_size) != samples * sizeof(float)) {
    return Error(
        ErrorKind::kBadInput, "bad_pcm",
        "the decoded audio's memory file is not " + std::to_string(samples) + " sealed samples");
  }
  std::vector<float> out(samples);
  char* data = reinterpret_cast<char*>(out.data());
  const size_t bytes = samples * sizeof(float);
  for (size_t off = 0; off < bytes;) {
    const ssize_t r = pread(fd, data + off, bytes - off, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return IoError("reading the decoded audio");
    off += static_cast<size_t>(r);
  }
  return out;
}

}  // namespace steno::audio
