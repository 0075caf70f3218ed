// Byte sizes as people write them on a command line ("512MiB", "24 GiB", "1.5GB", "4096").
//
// Binary units (KiB, MiB, GiB, TiB) are powers of 1024, decimal units (KB, MB, GB, TB) powers of
// 1000, because that is what the names mean and what nvidia-smi's MiB columns mean. Units are
// matched case-insensitively ("gib" == "GiB"); a bare number is bytes. Fractions are allowed with
// a unit and rounded to the nearest byte ("0.5GiB"); bytes themselves must be whole.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace steno::gpu {

inline constexpr int64_t kKiB = int64_t{1} << 10;
inline constexpr int64_t kMiB = int64_t{1} << 20;
inline constexpr int64_t kGiB = int64_t{1} << 30;

// Parses a size. Errors (kBadInput, code "bad_size") name the text and say what is accepted:
// empty text, a negative or non-numeric amount, an unknown unit, or more than INT64_MAX bytes.
Result<int64_t> ParseSize(std::string_view text);

// "24 GiB", "1.50 GiB", "512 MiB", "12.0 KiB", "100 B": short, for tables and messages.
std::string FormatSize(int64_t bytes);

}  // namespace steno::gpu
