// Paths the test harness (tests/CMakeLists.txt) passes through the environment.
#pragma once

#include <string>

namespace steno::test {

std::string StenoBin();  // the steno binary under test
std::string MakeTestModelBin();
std::string WhisperCliBin();  // upstream whisper-cli built from the same source
std::string TestData();       // generated media and models (tests/support/make_test_data.sh)
std::string TinyModel();      // TestData()/models/tiny-random.bin
std::string SourceDir();

// A fresh empty directory under the system temp dir, removed by the caller if wanted.
std::string MakeTempDir(const std::string& prefix);

}  // namespace steno::test
