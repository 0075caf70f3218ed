#include "store/job_id.h"

#include <openssl/rand.h>

#include <cstring>
#include <random>

namespace steno::store {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

}  // namespace

std::string NewJobId(int64_t now_ms) {
  std::string id(26, '0');
  auto t = static_cast<uint64_t>(now_ms) & ((uint64_t{1} << 48) - 1);
  for (int i = 9; i >= 0; --i) {
    id[i] = kAlphabet[t & 31];
    t >>= 5;
  }
  unsigned char random[10];
  if (RAND_bytes(random, sizeof random) != 1) {
    // OpenSSL's generator failing is near impossible; fall back rather than fail a submission.
    std::random_device rd;
    for (auto& b : random) b = static_cast<unsigned char>(rd());
  }
  // 80 bits -> 16 characters of 5 bits each.
  int bit = 0;
  for (int i = 10; i < 26; ++i, bit += 5) {
    int byte = bit / 8, shift = bit % 8;
    unsigned v = static_cast<unsigned>(random[byte]) << 8;
    if (byte + 1 < 10) v |= random[byte + 1];
    id[i] = kAlphabet[(v >> (11 - shift)) & 31];
  }
  return id;
}

bool IsValidJobId(std::string_view id) {
  if (id.size() != 26) return false;
  for (char c : id) {
    if (!std::memchr(kAlphabet, c, sizeof kAlphabet - 1)) return false;
  }
  return true;
}

}  // namespace steno::store
