#include "runner/protocol.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace steno::runner {

std::string EncodeFrame(const nlohmann::json& message) {
  const std::string payload =
      message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const auto n = static_cast<uint32_t>(payload.size());
  std::string frame;
  frame.reserve(4 + payload.size());
  frame.push_back(static_cast<char>((n >> 24) & 0xff));
  frame.push_back(static_cast<char>((n >> 16) & 0xff));
  frame.push_back(static_cast<char>((n >> 8) & 0xff));
  frame.push_back(static_cast<char>(n & 0xff));
  frame += payload;
  return frame;
}

Status FrameWriter::Write(const nlohmann::json& message, int fd) {
  const std::string frame = EncodeFrame(message);
  std::lock_guard<std::mutex> lock(mu_);
  size_t off = 0;
  while (off < frame.size()) {
    // MSG_NOSIGNAL: a vanished peer is an error value, not a SIGPIPE.
    ssize_t w;
    if (fd >= 0 && off == 0) {
      // The descriptor travels with the frame's first bytes (SCM_RIGHTS).
      iovec iov{const_cast<char*>(frame.data()), frame.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
      w = sendmsg(fd_, &msg, MSG_NOSIGNAL);
    } else {
      w = send(fd_, frame.data() + off, frame.size() - off, MSG_NOSIGNAL);
      if (w < 0 && errno == ENOTSOCK && fd < 0) {
        w = write(fd_, frame.data() + off, frame.size() - off);
      }
    }
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      return Error(ErrorKind::kUnavailable, "peer_closed",
                   std::string("runner connection closed: ") + std::strerror(errno));
    }
    off += static_cast<size_t>(w);
  }
  return {};
}

FrameReader::~FrameReader() {
  for (int fd : fds_) close(fd);
}

int FrameReader::TakeFd() {
  if (fds_.empty()) return -1;
  const int fd = fds_.front();
  fds_.pop_front();
  return fd;
}

ssize_t FrameReader::ReadSome(char* data, size_t size) {
  iovec iov{data, size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t r = recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
  if (r < 0 && errno == ENOTSOCK) return read(fd_, data, size);
  for (cmsghdr* c = r >= 0 ? CMSG_FIRSTHDR(&msg) : nullptr; c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < n; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds_.push_back(fd);
    }
  }
  return r;
}

Result<nlohmann::json> FrameReader::TakeFrame() {
  if (buffer_.size() < 4) return Error(ErrorKind::kTimeout, "timeout", "no complete frame");
  const auto* b = reinterpret_cast<const unsigned char*>(buffer_.data());
  const size_t n = (size_t{b[0]} << 24) | (size_t{b[1]} << 16) | (size_t{b[2]} << 8) | b[3];
  if (n > max_frame_bytes_) {
    return Error(ErrorKind::kBadInput, "frame_too_large",
                 "frame of " + std::to_string(n) + " bytes exceeds the limit of " +
                     std::to_string(max_frame_bytes_));
  }
  if (buffer_.size() < 4 + n) return Error(ErrorKind::kTimeout, "timeout", "no complete frame");
  nlohmann::json message = nlohmann::json::parse(buffer_.begin() + 4, buffer_.begin() + 4 + n,
                                                 nullptr, /*allow_exceptions=*/false);
  buffer_.erase(0, 4 + n);
  if (message.is_discarded() || !message.is_object() || !message.contains("type") ||
      !message["type"].is_string()) {
    return Error(ErrorKind::kBadInput, "bad_frame", "frame is not a JSON object with a type");
  }
  return message;
}

Result<nlohmann::json> FrameReader::Read(int timeout_ms) {
  for (;;) {
    auto frame = TakeFrame();
    if (frame.ok() || frame.error().kind != ErrorKind::kTimeout) return frame;
    pollfd pfd{fd_, POLLIN, 0};
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr < 0 && errno == EINTR) continue;
    if (pr < 0) return Error(ErrorKind::kIo, "read_failed", std::strerror(errno));
    if (pr == 0) return Error(ErrorKind::kTimeout, "timeout", "no frame within the timeout");
    char chunk[65536];
    ssize_t r = ReadSome(chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && errno == ECONNRESET) r = 0;
    if (r < 0) return Error(ErrorKind::kIo, "read_failed", std::strerror(errno));
    if (r == 0) {
      return Error(ErrorKind::kUnavailable, "peer_closed",
                   buffer_.empty() ? "connection closed" : "connection closed mid-frame");
    }
    buffer_.append(chunk, static_cast<size_t>(r));
  }
}

}  // namespace steno::runner
