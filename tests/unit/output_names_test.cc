// Output file names of `steno transcribe --output-dir`: one per input, never shared.
#include "cli/output_names.h"

#include <gtest/gtest.h>

namespace steno::cli {
namespace {

using Names = std::vector<std::string>;

TEST(OutputNamesTest, UniqueStemsKeepThePlainName) {
  auto names = OutputNames({"talks/a.mp3", "b.flac", "/abs/c"}, "srt");
  ASSERT_TRUE(names.ok()) << names.error().message;
  EXPECT_EQ(*names, (Names{"a.srt", "b.srt", "c.srt"}));
}

TEST(OutputNamesTest, CollidingStemsKeepTheirExtension) {
  auto names = OutputNames({"prompts/hello.gsm", "prompts/hello.g722", "bye.wav"}, "json");
  ASSERT_TRUE(names.ok()) << names.error().message;
  EXPECT_EQ(*names, (Names{"hello.gsm.json", "hello.g722.json", "bye.json"}));
  auto verbose = OutputNames({"x.wav", "x.flac"}, "verbose.json");
  ASSERT_TRUE(verbose.ok());
  EXPECT_EQ(*verbose, (Names{"x.wav.verbose.json", "x.flac.verbose.json"}));
}

TEST(OutputNamesTest, InputsThatWouldStillShareAnOutputAreRefusedNamingBoth) {
  struct Case {
    Names inputs;
    std::string first, second, output;
  };
  const std::vector<Case> cases = {
      {{"a/hello.wav", "b/hello.wav"}, "a/hello.wav", "b/hello.wav", "hello.wav.txt"},
      {{"same.wav", "same.wav"}, "same.wav", "same.wav", "same.wav.txt"},
      // The colliding stems' longer names meet a third input's plain name.
      {{"x.mp3", "x.wav", "x.mp3.ogg"}, "x.mp3", "x.mp3.ogg", "x.mp3.txt"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.first + " / " + c.second);
    auto names = OutputNames(c.inputs, "txt");
    ASSERT_FALSE(names.ok());
    EXPECT_EQ(names.error().kind, ErrorKind::kBadInput);
    EXPECT_EQ(names.error().code, "output_collision");
    const std::string& m = names.error().message;
    EXPECT_EQ(m.find(c.first + " and " + c.second + " would both be written to " + c.output), 0u)
        << m;
  }
}

}  // namespace
}  // namespace steno::cli
