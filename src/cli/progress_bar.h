// A one-line progress bar on stderr, drawn only when stderr is a terminal (scripts and logs get
// no control characters).
#pragma once

#include <string>

namespace steno::cli {

class ProgressBar {
 public:
  explicit ProgressBar(bool enabled) : enabled_(enabled) {}
  // Redraws the bar for `label` at `percent` (0..100); repeated percents are not redrawn.
  void Update(const std::string& label, int percent);
  // Ends the current bar's line.
  void Done();

 private:
  bool enabled_;
  int last_percent_ = -1;
};

}  // namespace steno::cli
