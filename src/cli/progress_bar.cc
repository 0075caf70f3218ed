#include "cli/progress_bar.h"

#include <algorithm>
#include <cstdio>

namespace steno::cli {

void ProgressBar::Update(const std::string& label, int percent) {
  if (!enabled_) return;
  percent = std::clamp(percent, 0, 100);
  if (percent == last_percent_) return;
  last_percent_ = percent;
  constexpr int kWidth = 30;
  const int filled = percent * kWidth / 100;
  std::fprintf(stderr, "\r%-24.24s [%s%s] %3d%%", label.c_str(), std::string(filled, '#').c_str(),
               std::string(kWidth - filled, ' ').c_str(), percent);
  std::fflush(stderr);
}

void ProgressBar::Done() {
  if (enabled_ && last_percent_ >= 0) std::fputc('\n', stderr);
  last_percent_ = -1;
}

}  // namespace steno::cli
