// Footprint: the memory a loaded model and each of its streams occupy, as whisper.cpp reports it.
//
// whisper.cpp has no API that returns sizes; it logs them ("model size = 77.11 MB",
// "kv self size = 3.15 MB", "compute buffer (encode) = 19.57 MB", ...). ParseFootprintLine reads
// those lines. The figures are in MB with two decimals, so they are accurate to 10 kB; on a GPU the
// device's own counters are the truth and these are the estimate the scheduler starts from.
#pragma once

#include <cstdint>
#include <string_view>

namespace steno::engine {

struct Footprint {
  // Once per loaded model.
  int64_t weights_bytes = 0;
  // Once per stream (whisper_state).
  int64_t kv_self_bytes = 0;
  int64_t kv_cross_bytes = 0;
  int64_t kv_pad_bytes = 0;
  int64_t compute_conv_bytes = 0;
  int64_t compute_encode_bytes = 0;
  int64_t compute_cross_bytes = 0;
  int64_t compute_decode_bytes = 0;

  int64_t StreamBytes() const {
    return kv_self_bytes + kv_cross_bytes + kv_pad_bytes + compute_conv_bytes +
           compute_encode_bytes + compute_cross_bytes + compute_decode_bytes;
  }
};

// If `line` is one of whisper.cpp's size lines, stores its value in `fp` and returns true.
bool ParseFootprintLine(std::string_view line, Footprint* fp);

}  // namespace steno::engine
