#include "cli/signal_watch.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

namespace steno::cli {
namespace {

int g_pipe[2] = {-1, -1};
std::atomic<int> g_stops{0};
constexpr char kWakeByte = 0;  // Wake(): no signal has number 0

void OnSignal(int sig) {
  const int saved = errno;
  if (sig != SIGHUP && g_stops.fetch_add(1) >= 1) {
    constexpr char kMsg[] = "steno: second stop signal: exiting now\n";
    (void)!write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    _exit(130);
  }
  const char byte = static_cast<char>(sig);
  (void)!write(g_pipe[1], &byte, 1);
  errno = saved;
}

}  // namespace

SignalWatch& SignalWatch::Install() {
  static SignalWatch* watch = [] {
    if (pipe2(g_pipe, O_CLOEXEC | O_NONBLOCK) != 0) g_pipe[0] = g_pipe[1] = -1;
    struct sigaction sa = {};
    sa.sa_handler = OnSignal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGHUP, &sa, nullptr);
    return new SignalWatch();
  }();
  return *watch;
}

SignalKind SignalWatch::Wait(std::chrono::milliseconds timeout) {
  pollfd p{g_pipe[0], POLLIN, 0};
  const int n = poll(&p, 1, static_cast<int>(timeout.count()));
  if (n <= 0) return SignalKind::kNone;
  char byte = 0;
  if (read(g_pipe[0], &byte, 1) != 1) return SignalKind::kNone;
  if (byte == kWakeByte) return SignalKind::kNone;
  return byte == SIGHUP ? SignalKind::kReload : SignalKind::kStop;
}

void SignalWatch::RequestStop() {
  g_stops.fetch_add(1);
  const char byte = static_cast<char>(SIGTERM);
  (void)!write(g_pipe[1], &byte, 1);
}

void SignalWatch::Wake() {
  (void)!write(g_pipe[1], &kWakeByte, 1);
}

}  // namespace steno::cli
