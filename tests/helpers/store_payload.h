// The upload content the store crash test submits for each idempotency key: deterministic, so
// the driver (tests/helpers/store_driver.cc) and the test agree on every byte without talking.
#pragma once

#include <cstdint>
#include <string>

namespace steno::test {

inline uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// 24 to 120 KiB of pseudo-random bytes, different for every key.
inline std::string StorePayload(const std::string& key) {
  uint64_t x = Fnv1a(key) | 1;
  std::string out((24 + x % 97) * 1024, '\0');
  for (auto& c : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x >> 56);
  }
  return out;
}

}  // namespace steno::test
