// Where `steno transcribe --output-dir` writes each input's transcript.
//
// An input's output is named by its stem and the format's extension ("talk.mp3" -> "talk.srt").
// Inputs whose stems collide keep their whole file name instead ("hello.gsm" -> "hello.gsm.json",
// "hello.g722" -> "hello.g722.json"), as whisper.cpp's CLI appends to the input's name. Inputs
// that would still share one output (the same file name in two folders, or a file given twice)
// are refused with kBadInput "output_collision" naming both, so a run never exits 0 with fewer
// outputs than inputs: one transcript silently overwriting another is not possible.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace steno::cli {

// One file name (no directory) per input, in input order. `extension` has no leading dot
// ("srt", "verbose.json").
Result<std::vector<std::string>> OutputNames(const std::vector<std::string>& inputs,
                                             std::string_view extension);

}  // namespace steno::cli
