// Job ids: 26 characters of Crockford base32 (ULID layout): 48 bits of milliseconds since the
// epoch, then 80 random bits. Ids sort by creation time as text, are unguessable (a job id is a
// capability to read its result), and need no coordination between nodes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace steno::store {

std::string NewJobId(int64_t now_ms);
// 26 characters from the Crockford alphabet (0-9, A-Z without I, L, O, U).
bool IsValidJobId(std::string_view id);

}  // namespace steno::store
