// Paths the test harness (tests/CMakeLists.txt) passes through the environment.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace steno::test {

std::string StenoBin();  // the steno binary under test
std::string MakeTestModelBin();
std::string WhisperCliBin();  // upstream whisper-cli built from the same source
std::string TestData();       // generated media and models (tests/support/make_test_data.sh)
std::string TinyModel();      // TestData()/models/tiny-random.bin
std::string SourceDir();
// A helper program built from tests/helpers/NAME.cc, next to the running test binary.
std::string HelperBin(const std::string& name);

// The seed of a randomised test: $STENO_TEST_SEED when set (to replay a failure), else a fresh
// one from std::random_device. Either way it is printed and recorded as the test's "seed"
// property, with the line that replays it.
std::uint32_t TestSeed();

// A fresh empty directory under the system temp dir, removed by the caller if wanted.
std::string MakeTempDir(const std::string& prefix);

// A fresh empty directory removed when the object goes out of scope, however the test ends.
struct ScopedTempDir {
  explicit ScopedTempDir(const std::string& prefix = "steno-test") : path(MakeTempDir(prefix)) {}
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::string path;
};

std::string MediaPath(const std::string& name);  // TestData()/media/NAME
std::vector<char> ReadFileBytes(const std::string& path);
std::string ReadFileText(const std::string& path);

}  // namespace steno::test
