// Small string helpers shared across the code base.
#pragma once

#include <string>
#include <string_view>

namespace steno {

// `s` without leading and trailing whitespace (space, \t, \n, \v, \f, \r).
std::string_view Trim(std::string_view s);
// `s` without leading whitespace.
std::string_view TrimLeft(std::string_view s);

// A Prometheus label value escaped for the text exposition format (\\, \" and \n).
std::string PrometheusLabelValue(std::string_view value);

}  // namespace steno
