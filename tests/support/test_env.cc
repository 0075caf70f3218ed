#include "support/test_env.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>

namespace steno::test {
namespace {

// The environment wins; the build's own paths (compiled in) are the default.
std::string Required(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  if (v && *v) return v;
  if (fallback && *fallback) return fallback;
  throw std::runtime_error(std::string("test environment variable not set: ") + name);
}

}  // namespace

std::string StenoBin() {
  return Required("STENO_BIN", STENO_TEST_DEFAULT_BIN);
}
std::string MakeTestModelBin() {
  return Required("MAKE_TEST_MODEL", STENO_TEST_DEFAULT_MAKE_TEST_MODEL);
}
std::string WhisperCliBin() {
  return Required("WHISPER_CLI", STENO_TEST_DEFAULT_WHISPER_CLI);
}
std::string TestData() {
  return Required("STENO_TEST_DATA", STENO_TEST_DEFAULT_DATA);
}
std::uint32_t TestSeed() {
  std::uint32_t seed = 0;
  const char* given = std::getenv("STENO_TEST_SEED");
  if (given && *given) {
    seed = static_cast<std::uint32_t>(std::stoul(given));
  } else {
    seed = std::random_device{}();
  }
  std::printf("seed %u (replay with STENO_TEST_SEED=%u)\n", seed, seed);
  std::fflush(stdout);
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return seed;
}

std::string TinyModel() {
  return TestData() + "/models/tiny-random.bin";
}
std::string SourceDir() {
  return Required("STENO_SOURCE_DIR", STENO_TEST_DEFAULT_SOURCE_DIR);
}

std::string MakeTempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + ".XXXXXX";
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  return tmpl;
}

std::string HelperBin(const std::string& name) {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / name).string();
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string MediaPath(const std::string& name) {
  return TestData() + "/media/" + name;
}

std::vector<char> ReadFileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string ReadFileText(const std::string& path) {
  auto bytes = ReadFileBytes(path);
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace steno::test
