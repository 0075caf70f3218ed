// Small string helpers shared across the code base.
#pragma once

#include <string_view>

namespace steno {

// `s` without leading and trailing whitespace (space, \t, \n, \v, \f, \r).
std::string_view Trim(std::string_view s);
// `s` without leading whitespace.
std::string_view TrimLeft(std::string_view s);

}  // namespace steno
