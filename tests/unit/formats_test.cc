// Output formats: exact documents for a hand-made transcript, timestamp rounding, cue rules, JSON
// robustness, and the validators in tests/support/subtitle_check.h (which integration tests reuse,
// so they are tested to reject what they must).
#include "engine/formats.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/subtitle_check.h"

namespace steno::engine {
namespace {

using test::ValidateJsonShape;
using test::ValidateSrt;
using test::ValidateVerboseJsonShape;
using test::ValidateVtt;
using test::WordsExpectation;

Segment MakeSegment(int id, double start, double end, std::string text) {
  Segment s;
  s.id = id;
  s.start = start;
  s.end = end;
  s.text = std::move(text);
  return s;
}

// Three segments: an ordinary one, one with only whitespace (skipped by txt/srt/vtt), and one
// ending past the first hour.
Transcript Sample() {
  Transcript t;
  t.language = "en";
  t.duration = 3726;
  Segment a = MakeSegment(0, 0.0, 1.5, " Hello world.");
  a.tokens = {50364, 15947};
  a.temperature = 0.2f;
  a.avg_logprob = -0.25f;
  a.compression_ratio = 1.1f;
  a.no_speech_prob = 0.01f;
  Segment b = MakeSegment(1, 1.5, 2.0, "   ");
  b.seek = 150;
  Segment c = MakeSegment(2, 2.0, 3725.5, " Goodbye.");
  c.seek = 3000;
  c.tokens = {7};
  t.segments = {a, b, c};
  return t;
}

// ---------------------------------------------------------------------------------------------
// Format names

TEST(FormatNames, ParseAcceptsEveryNameAndRoundTrips) {
  for (Format f : {Format::kTxt, Format::kSrt, Format::kVtt, Format::kJson, Format::kVerboseJson}) {
    auto parsed = ParseFormat(FormatName(f));
    ASSERT_TRUE(parsed.ok()) << FormatName(f);
    EXPECT_EQ(*parsed, f);
  }
  EXPECT_EQ(FormatName(Format::kVerboseJson), "verbose_json");
  ASSERT_TRUE(ParseFormat("text").ok());
  EXPECT_EQ(ParseFormat("text").value(), Format::kTxt);  // OpenAI's name for plain text
  ASSERT_TRUE(ParseFormat("SRT").ok());
  EXPECT_EQ(ParseFormat("SRT").value(), Format::kSrt);
}

TEST(FormatNames, UnknownNameIsBadInputListingValidNames) {
  for (const char* bad : {"docx", "", "verbose-json", "json "}) {
    auto parsed = ParseFormat(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().kind, ErrorKind::kBadInput);
    EXPECT_EQ(parsed.error().code, "bad_format");
    for (const char* name : {"txt", "srt", "vtt", "json", "verbose_json"}) {
      EXPECT_NE(parsed.error().message.find(name), std::string::npos) << name;
    }
  }
}

TEST(FormatNames, ExtensionsAndContentTypes) {
  EXPECT_EQ(FormatExtension(Format::kTxt), "txt");
  EXPECT_EQ(FormatExtension(Format::kSrt), "srt");
  EXPECT_EQ(FormatExtension(Format::kVtt), "vtt");
  EXPECT_EQ(FormatExtension(Format::kJson), "json");
  EXPECT_EQ(FormatExtension(Format::kVerboseJson), "verbose.json");
  EXPECT_EQ(FormatContentType(Format::kTxt), "text/plain; charset=utf-8");
  EXPECT_EQ(FormatContentType(Format::kSrt), "application/x-subrip");
  EXPECT_EQ(FormatContentType(Format::kVtt), "text/vtt");
  EXPECT_EQ(FormatContentType(Format::kJson), "application/json");
  EXPECT_EQ(FormatContentType(Format::kVerboseJson), "application/json");
}

// ---------------------------------------------------------------------------------------------
// Timestamps

TEST(Timestamps, RoundToTheMillisecond) {
  EXPECT_EQ(FormatTimestamp(1.9996, ','), "00:00:02,000");
  EXPECT_EQ(FormatTimestamp(1.9994, ','), "00:00:01,999");
  EXPECT_EQ(FormatTimestamp(0.0005, ','), "00:00:00,001");
  EXPECT_EQ(FormatTimestamp(0.0004, ','), "00:00:00,000");
  EXPECT_EQ(FormatTimestamp(59.9999, ','), "00:01:00,000");  // the carry reaches the minutes
  EXPECT_EQ(FormatTimestamp(0.07, ','), "00:00:00,070");     // 0.07 * 1000 = 70.00000000000001
  EXPECT_EQ(SecondsToMillis(1.9996), 2000);
  EXPECT_DOUBLE_EQ(RoundSeconds(1.23456), 1.235);
}

TEST(Timestamps, HoursMinutesAndSeparator) {
  EXPECT_EQ(FormatTimestamp(3725.5, ','), "01:02:05,500");
  EXPECT_EQ(FormatTimestamp(3725.5, '.'), "01:02:05.500");
  EXPECT_EQ(FormatTimestamp(3725.5), "01:02:05,500");  // ',' by default
  EXPECT_EQ(FormatTimestamp(359999.999, ','), "99:59:59,999");
  EXPECT_EQ(FormatTimestamp(360000, ','), "100:00:00,000");
}

TEST(Timestamps, NegativeAndNonFiniteAreZero) {
  EXPECT_EQ(FormatTimestamp(-0.5, ','), "00:00:00,000");
  EXPECT_EQ(FormatTimestamp(std::nan(""), ','), "00:00:00,000");
  EXPECT_EQ(FormatTimestamp(-std::numeric_limits<double>::infinity(), ','), "00:00:00,000");
  EXPECT_EQ(SecondsToMillis(std::numeric_limits<double>::infinity()), 0);
  EXPECT_EQ(SecondsToMillis(1e300), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(RoundSeconds(-3), 0.0);
}

// ---------------------------------------------------------------------------------------------
// Exact documents

TEST(Render, TxtGolden) {
  EXPECT_EQ(Render(Sample(), Format::kTxt), "Hello world.\nGoodbye.\n");
  EXPECT_EQ(Render(Transcript{}, Format::kTxt), "");
}

TEST(Render, SrtGolden) {
  EXPECT_EQ(Render(Sample(), Format::kSrt),
            "1\n"
            "00:00:00,000 --> 00:00:01,500\n"
            "Hello world.\n"
            "\n"
            "2\n"
            "00:00:02,000 --> 01:02:05,500\n"
            "Goodbye.\n");
  EXPECT_EQ(Render(Transcript{}, Format::kSrt), "");
}

TEST(Render, VttGolden) {
  EXPECT_EQ(Render(Sample(), Format::kVtt),
            "WEBVTT\n"
            "\n"
            "00:00:00.000 --> 00:00:01.500\n"
            "Hello world.\n"
            "\n"
            "00:00:02.000 --> 01:02:05.500\n"
            "Goodbye.\n");
  EXPECT_EQ(Render(Transcript{}, Format::kVtt), "WEBVTT\n\n");
}

TEST(Render, JsonGolden) {
  // Every segment is listed (the blank one too) with its text as decoded; "text" loses only its
  // leading space.
  EXPECT_EQ(Render(Sample(), Format::kJson), R"({
  "text": "Hello world.    Goodbye.",
  "language": "en",
  "duration": 3726.0,
  "segments": [
    {
      "id": 0,
      "start": 0.0,
      "end": 1.5,
      "text": " Hello world."
    },
    {
      "id": 1,
      "start": 1.5,
      "end": 2.0,
      "text": "   "
    },
    {
      "id": 2,
      "start": 2.0,
      "end": 3725.5,
      "text": " Goodbye."
    }
  ]
}
)");
}

TEST(Render, VerboseJsonGolden) {
  Transcript t = Sample();
  t.segments.resize(2);
  t.duration = 2.0004;  // rounded to 2.0
  // Float statistics come out with float precision: 0.2f is 0.2, not 0.20000000298023224.
  EXPECT_EQ(Render(t, Format::kVerboseJson), R"({
  "task": "transcribe",
  "language": "en",
  "duration": 2.0,
  "text": "Hello world.   ",
  "segments": [
    {
      "id": 0,
      "seek": 0,
      "start": 0.0,
      "end": 1.5,
      "text": " Hello world.",
      "tokens": [
        50364,
        15947
      ],
      "temperature": 0.2,
      "avg_logprob": -0.25,
      "compression_ratio": 1.1,
      "no_speech_prob": 0.01
    },
    {
      "id": 1,
      "seek": 150,
      "start": 1.5,
      "end": 2.0,
      "text": "   ",
      "tokens": [],
      "temperature": 0.0,
      "avg_logprob": 0.0,
      "compression_ratio": 0.0,
      "no_speech_prob": 0.0
    }
  ]
}
)");
}

TEST(Render, VerboseJsonWordsGolden) {
  Transcript t;
  t.task = "translate";
  t.language = "de";
  t.duration = 1;
  t.has_words = true;
  Segment s = MakeSegment(0, 0.0, 0.9, " Hi there");
  s.words = {{" Hi", 0.0, 0.3, 0.5f}, {" there", 0.3, 0.9, 0.75f}};
  t.segments = {s};
  EXPECT_EQ(Render(t, Format::kVerboseJson), R"({
  "task": "translate",
  "language": "de",
  "duration": 1.0,
  "text": "Hi there",
  "segments": [
    {
      "id": 0,
      "seek": 0,
      "start": 0.0,
      "end": 0.9,
      "text": " Hi there",
      "tokens": [],
      "temperature": 0.0,
      "avg_logprob": 0.0,
      "compression_ratio": 0.0,
      "no_speech_prob": 0.0,
      "words": [
        {
          "word": " Hi",
          "start": 0.0,
          "end": 0.3,
          "probability": 0.5
        },
        {
          "word": " there",
          "start": 0.3,
          "end": 0.9,
          "probability": 0.75
        }
      ]
    }
  ],
  "words": [
    {
      "word": "Hi",
      "start": 0.0,
      "end": 0.3
    },
    {
      "word": "there",
      "start": 0.3,
      "end": 0.9
    }
  ]
}
)");
}

// ---------------------------------------------------------------------------------------------
// Cue rules

TEST(Render, SkippedSegmentsKeepSrtNumberingConsecutive) {
  Transcript t;
  t.segments = {MakeSegment(0, 0, 1, " a"),     MakeSegment(1, 1, 2, ""),
                MakeSegment(2, 2, 3, " \n\t "), MakeSegment(3, 3, 4, " b"),
                MakeSegment(4, 4, 5, "\r\n"),   MakeSegment(5, 5, 6, " c")};
  const std::string srt = Render(t, Format::kSrt);
  EXPECT_EQ(srt,
            "1\n00:00:00,000 --> 00:00:01,000\na\n\n"
            "2\n00:00:03,000 --> 00:00:04,000\nb\n\n"
            "3\n00:00:05,000 --> 00:00:06,000\nc\n");
  EXPECT_TRUE(ValidateSrt(srt).empty());
  EXPECT_EQ(Render(t, Format::kTxt), "a\nb\nc\n");
}

TEST(Render, ArrowInTextIsReplaced) {
  Transcript t;
  t.segments = {MakeSegment(0, 0, 1, " a --> b ---> c-->")};
  EXPECT_EQ(Render(t, Format::kVtt), "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\na -> b -> c->\n");
  EXPECT_EQ(Render(t, Format::kSrt), "1\n00:00:00,000 --> 00:00:01,000\na -> b -> c->\n");
}

TEST(Render, BlankLinesInsideCueTextCollapse) {
  Transcript t;
  t.segments = {MakeSegment(0, 0, 1, " line one\n\n\n  line two \r\n  \n\rthree ")};
  EXPECT_EQ(Render(t, Format::kSrt),
            "1\n00:00:00,000 --> 00:00:01,000\nline one\nline two\nthree\n");
  const std::string vtt = Render(t, Format::kVtt);
  EXPECT_EQ(vtt, "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nline one\nline two\nthree\n");
  EXPECT_TRUE(ValidateVtt(vtt).empty());
}

TEST(Render, VttEscapesMarkup) {
  Transcript t;
  t.segments = {MakeSegment(0, 0, 1, " <b>R&D</b> > 1")};
  EXPECT_EQ(Render(t, Format::kVtt),
            "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n&lt;b>R&amp;D&lt;/b> > 1\n");
  // SRT has no escapes; its text stays as decoded.
  EXPECT_EQ(Render(t, Format::kSrt), "1\n00:00:00,000 --> 00:00:01,000\n<b>R&D</b> > 1\n");
}

TEST(Render, BadTimesAreClampedInSubtitlesAndJson) {
  Transcript t;
  t.segments = {MakeSegment(0, -1.0, -0.5, " negative"),  // both become 0
                MakeSegment(1, 5.0, 4.0, " end before start"),
                MakeSegment(2, 3.0, 6.0, " start goes backwards"),
                MakeSegment(3, std::nan(""), std::numeric_limits<double>::infinity(), " nan")};
  const std::string srt = Render(t, Format::kSrt);
  EXPECT_EQ(srt,
            "1\n00:00:00,000 --> 00:00:00,000\nnegative\n\n"
            "2\n00:00:05,000 --> 00:00:05,000\nend before start\n\n"
            "3\n00:00:05,000 --> 00:00:06,000\nstart goes backwards\n\n"
            "4\n00:00:05,000 --> 00:00:05,000\nnan\n");
  EXPECT_TRUE(ValidateSrt(srt).empty()) << srt;

  const auto j = nlohmann::json::parse(Render(t, Format::kJson));
  EXPECT_TRUE(ValidateJsonShape(j).empty());
  EXPECT_EQ(j["segments"][0]["start"], 0.0);
  EXPECT_EQ(j["segments"][0]["end"], 0.0);
  EXPECT_EQ(j["segments"][1]["start"], 5.0);
  EXPECT_EQ(j["segments"][1]["end"], 5.0);
  // JSON keeps each segment's own start (no monotonic clamp): it reports what was decoded.
  EXPECT_EQ(j["segments"][2]["start"], 3.0);
  EXPECT_EQ(j["segments"][3]["start"], 0.0);
  EXPECT_EQ(j["segments"][3]["end"], 0.0);
}

TEST(Render, JsonTimesRoundedToMilliseconds) {
  Transcript t;
  t.duration = 10.12345;
  t.segments = {MakeSegment(0, 1.9996, 2.0004, " x")};
  const auto j = nlohmann::json::parse(Render(t, Format::kJson));
  EXPECT_EQ(j["duration"].get<double>(), 10.123);
  EXPECT_EQ(j["segments"][0]["start"].get<double>(), 2.0);
  EXPECT_EQ(j["segments"][0]["end"].get<double>(), 2.0);
}

// ---------------------------------------------------------------------------------------------
// JSON robustness and words

TEST(Render, InvalidUtf8SurvivesJson) {
  Transcript t;
  t.language = "en";
  t.has_words = true;
  Segment s = MakeSegment(0, 0, 1, std::string(" ok \xff\xfe \xc3", 8));
  s.words = {{std::string(" \xe2\x82", 3), 0, 1, 0.5f}};
  t.segments = {s};
  // A plain dump throws on these bytes; that is why Render must not use one.
  EXPECT_THROW((void)ToJson(t).dump(), nlohmann::json::type_error);
  for (Format f : {Format::kJson, Format::kVerboseJson}) {
    std::string out;
    ASSERT_NO_THROW(out = Render(t, f));
    nlohmann::json j;
    ASSERT_NO_THROW(j = nlohmann::json::parse(out)) << out;
    const std::string text = j["segments"][0]["text"];
    EXPECT_EQ(text, " ok \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD");  // each bad byte -> U+FFFD
    EXPECT_EQ(j["text"], "ok \xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD");
  }
  const auto v = nlohmann::json::parse(Render(t, Format::kVerboseJson));
  EXPECT_EQ(v["words"][0]["word"], "\xEF\xBF\xBD");
  EXPECT_TRUE(ValidateVerboseJsonShape(v, WordsExpectation::kPresent).empty());
}

TEST(Render, WordsOnlyWhenRequested) {
  Transcript t = Sample();
  t.segments[0].words = {{" Hello", 0.0, 0.7, 0.9f}, {" world.", 0.7, 1.5, 0.8f}};
  t.has_words = false;  // words present in the data but not asked for
  const auto without = nlohmann::json::parse(Render(t, Format::kVerboseJson));
  EXPECT_FALSE(without.contains("words"));
  for (const auto& s : without["segments"]) EXPECT_FALSE(s.contains("words"));
  EXPECT_TRUE(ValidateVerboseJsonShape(without, WordsExpectation::kAbsent).empty());

  t.has_words = true;
  const auto with = nlohmann::json::parse(Render(t, Format::kVerboseJson));
  ASSERT_TRUE(with.contains("words"));
  ASSERT_EQ(with["words"].size(), 2u);
  EXPECT_EQ(with["words"][1]["word"], "world.");
  EXPECT_EQ(with["words"][1]["end"], 1.5);
  for (const auto& s : with["segments"]) EXPECT_TRUE(s.contains("words"));  // [] when none
  EXPECT_EQ(with["segments"][0]["words"][0]["probability"].get<double>(), 0.9);
  EXPECT_TRUE(ValidateVerboseJsonShape(with, WordsExpectation::kPresent).empty());
  EXPECT_FALSE(ValidateVerboseJsonShape(with, WordsExpectation::kAbsent).empty());

  // The plain json format never carries words.
  const auto plain = nlohmann::json::parse(Render(t, Format::kJson));
  EXPECT_FALSE(plain.contains("words"));
  EXPECT_TRUE(ValidateJsonShape(plain).empty());
}

// ---------------------------------------------------------------------------------------------
// Validators

constexpr const char* kGoodSrt =
    "1\n00:00:00,000 --> 00:00:01,000\na\n\n"
    "2\n00:00:01,000 --> 00:00:02,500\nb\nsecond line\n";
constexpr const char* kGoodVtt =
    "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\na\n\n"
    "00:00:01.000 --> 00:00:02.500\nb\n";

TEST(Validators, AcceptWellFormedDocuments) {
  EXPECT_TRUE(ValidateSrt(kGoodSrt).empty());
  EXPECT_TRUE(ValidateSrt("").empty());
  EXPECT_TRUE(ValidateVtt(kGoodVtt).empty());
  EXPECT_TRUE(ValidateVtt("WEBVTT\n\n").empty());
  EXPECT_TRUE(
      ValidateVtt("WEBVTT - title\n\nid-1\n00:00:00.000 --> 00:00:01.000 line:0\nx\n").empty());
}

TEST(Validators, RejectBrokenSrt) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"gap in numbering",
       "1\n00:00:00,000 --> 00:00:01,000\na\n\n3\n00:00:01,000 --> "
       "00:00:02,000\nb\n"},
      {"starts at 0", "0\n00:00:00,000 --> 00:00:01,000\na\n"},
      {"dot instead of comma", "1\n00:00:00.000 --> 00:00:01.000\na\n"},
      {"decreasing starts",
       "1\n00:00:05,000 --> 00:00:06,000\na\n\n2\n00:00:04,000 --> "
       "00:00:07,000\nb\n"},
      {"end before start", "1\n00:00:05,000 --> 00:00:04,000\na\n"},
      {"no text", "1\n00:00:00,000 --> 00:00:01,000\n\n2\n00:00:01,000 --> 00:00:02,000\nb\n"},
      {"no blank line between cues",
       "1\n00:00:00,000 --> 00:00:01,000\na\n2\n00:00:01,000 --> "
       "00:00:02,000\nb\n"},
      {"blank line inside text", "1\n00:00:00,000 --> 00:00:01,000\na\n\nmore\n"},
      {"two blank lines",
       "1\n00:00:00,000 --> 00:00:01,000\na\n\n\n2\n00:00:01,000 --> "
       "00:00:02,000\nb\n"},
      {"short hours", "1\n0:00:00,000 --> 00:00:01,000\na\n"},
      {"61 seconds", "1\n00:00:61,000 --> 00:01:02,000\na\n"},
      {"two-digit millis", "1\n00:00:00,00 --> 00:00:01,000\na\n"},
      {"missing final newline", "1\n00:00:00,000 --> 00:00:01,000\na"},
      {"whitespace-only text line", "1\n00:00:00,000 --> 00:00:01,000\na\n  \n"},
      {"vtt given as srt", kGoodVtt},
  };
  for (const auto& [what, doc] : cases) {
    EXPECT_FALSE(ValidateSrt(doc).empty()) << what;
  }
  const auto problems = ValidateSrt(cases[0].second);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("should be 2"), std::string::npos) << problems[0];
}

TEST(Validators, RejectBrokenVtt) {
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"missing header", "00:00:00.000 --> 00:00:01.000\na\n"},
      {"header not first", "\nWEBVTT\n\n00:00:00.000 --> 00:00:01.000\na\n"},
      {"no blank after header", "WEBVTT\n00:00:00.000 --> 00:00:01.000\na\n"},
      {"WEBVTTX header", "WEBVTTX\n\n00:00:00.000 --> 00:00:01.000\na\n"},
      {"comma instead of dot", "WEBVTT\n\n00:00:00,000 --> 00:00:01,000\na\n"},
      {"decreasing starts",
       "WEBVTT\n\n00:00:05.000 --> 00:00:06.000\na\n\n00:00:04.000 --> "
       "00:00:07.000\nb\n"},
      {"end before start", "WEBVTT\n\n00:00:05.000 --> 00:00:04.000\na\n"},
      {"no hours", "WEBVTT\n\n00:00.000 --> 00:01.000\na\n"},
      {"arrow in text", "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\na --> b\n"},
      {"blank line inside text", "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\na\n\nmore\n"},
      {"no text", "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n"},
      {"srt given as vtt", kGoodSrt},
  };
  for (const auto& [what, doc] : cases) {
    EXPECT_FALSE(ValidateVtt(doc).empty()) << what;
  }
}

TEST(Validators, RejectBrokenJsonShapes) {
  const auto good = nlohmann::json::parse(Render(Sample(), Format::kJson));
  ASSERT_TRUE(ValidateJsonShape(good).empty());
  auto missing = good;
  missing.erase("language");
  EXPECT_FALSE(ValidateJsonShape(missing).empty());
  auto wrong_type = good;
  wrong_type["segments"][0]["start"] = "0.0";
  EXPECT_FALSE(ValidateJsonShape(wrong_type).empty());
  auto backwards = good;
  backwards["segments"][0]["end"] = -1;
  EXPECT_FALSE(ValidateJsonShape(backwards).empty());
  auto extra = good;
  extra["segments"][1]["tokens"] = nlohmann::json::array();
  EXPECT_FALSE(ValidateJsonShape(extra).empty());
  EXPECT_FALSE(ValidateJsonShape(nlohmann::json::array()).empty());
  // verbose_json is not the json shape, and the other way round.
  const auto verbose = nlohmann::json::parse(Render(Sample(), Format::kVerboseJson));
  ASSERT_TRUE(ValidateVerboseJsonShape(verbose).empty());
  EXPECT_FALSE(ValidateJsonShape(verbose).empty());
  EXPECT_FALSE(ValidateVerboseJsonShape(good).empty());

  auto bad_task = verbose;
  bad_task["task"] = "summarize";
  EXPECT_FALSE(ValidateVerboseJsonShape(bad_task).empty());
  auto float_token = verbose;
  float_token["segments"][0]["tokens"][0] = 1.5;
  EXPECT_FALSE(ValidateVerboseJsonShape(float_token).empty());
  auto half_words = verbose;
  half_words["segments"][0]["words"] = nlohmann::json::array();  // segment words, no top-level
  EXPECT_FALSE(ValidateVerboseJsonShape(half_words).empty());
  auto bad_prob = verbose;
  bad_prob["segments"][0]["no_speech_prob"] = 1.5;
  EXPECT_FALSE(ValidateVerboseJsonShape(bad_prob).empty());
}

// ---------------------------------------------------------------------------------------------
// Random transcripts: whatever the engine hands over, every format stays valid.

std::string RandomText(std::mt19937& rng) {
  static const std::vector<std::string> kPieces = {
      " ", "  ",   "\n",   "\n\n",         "\r\n",     "\t",     "-->",         "--",
      ">", "<",    "&",    "hello",        "world",    "1",      "2",           ".",
      ",", "\xff", "\xc3", "\xe2\x82\xac", "\xc3\xa9", "WEBVTT", "00:00:01,000"};
  std::uniform_int_distribution<int> count(0, 8);
  std::uniform_int_distribution<std::size_t> pick(0, kPieces.size() - 1);
  std::string text;
  for (int n = count(rng); n > 0; --n) text += kPieces[pick(rng)];
  return text;
}

Transcript RandomTranscript(std::uint32_t seed, int segments, bool words) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> step(-0.5, 9.0);  // sometimes goes backwards
  std::uniform_real_distribution<double> len(-1.0, 12.0);  // sometimes ends before it starts
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  Transcript t;
  t.language = "en";
  t.has_words = words;
  double clock = -1.0;  // the first segments may start before zero
  for (int i = 0; i < segments; ++i) {
    clock += step(rng);
    Segment s = MakeSegment(i, clock, clock + len(rng), RandomText(rng));
    s.seek = i * 100;
    s.tokens = {static_cast<int>(rng() % 51865), static_cast<int>(rng() % 51865)};
    s.temperature = unit(rng);
    s.avg_logprob = -unit(rng) * 3;
    s.compression_ratio = unit(rng) * 4;
    s.no_speech_prob = unit(rng);
    if (words) {
      for (int k = 0; k < 3; ++k) {
        const double ws = s.start + k * 0.3;
        s.words.push_back({RandomText(rng), ws, ws + len(rng) / 10, unit(rng)});
      }
    }
    t.segments.push_back(std::move(s));
  }
  t.duration = clock + 10;
  return t;
}

int CountTimingLines(const std::string& doc) {
  int n = 0;
  for (auto at = doc.find(" --> "); at != std::string::npos; at = doc.find(" --> ", at + 1)) ++n;
  return n;
}

TEST(Render, RandomTranscriptsValidateInEveryFormat) {
  for (std::uint32_t seed = 1; seed <= 20; ++seed) {
    const Transcript t = RandomTranscript(seed, 200, /*words=*/seed % 2 == 0);
    int non_empty = 0;
    for (const auto& s : t.segments) {
      if (s.text.find_first_not_of(" \t\r\n") != std::string::npos) ++non_empty;
    }
    const std::string srt = Render(t, Format::kSrt);
    const auto srt_problems = ValidateSrt(srt);
    EXPECT_TRUE(srt_problems.empty()) << "seed " << seed << ": " << srt_problems.front();
    const std::string vtt = Render(t, Format::kVtt);
    const auto vtt_problems = ValidateVtt(vtt);
    EXPECT_TRUE(vtt_problems.empty()) << "seed " << seed << ": " << vtt_problems.front();
    // One cue per non-blank segment: count timing lines.
    EXPECT_EQ(CountTimingLines(srt), non_empty) << "seed " << seed;
    EXPECT_EQ(CountTimingLines(vtt), non_empty) << "seed " << seed;
    const std::string txt = Render(t, Format::kTxt);
    EXPECT_TRUE(txt.empty() || txt.back() == '\n');

    nlohmann::json j, v;
    ASSERT_NO_THROW(j = nlohmann::json::parse(Render(t, Format::kJson))) << "seed " << seed;
    ASSERT_NO_THROW(v = nlohmann::json::parse(Render(t, Format::kVerboseJson))) << "seed " << seed;
    const auto json_problems = ValidateJsonShape(j);
    EXPECT_TRUE(json_problems.empty()) << "seed " << seed << ": " << json_problems.front();
    EXPECT_EQ(j["segments"].size(), 200u);
    const auto verbose_problems = ValidateVerboseJsonShape(
        v, t.has_words ? WordsExpectation::kPresent : WordsExpectation::kAbsent);
    EXPECT_TRUE(verbose_problems.empty()) << "seed " << seed << ": " << verbose_problems.front();
    if (t.has_words) {
      EXPECT_EQ(v["words"].size(), 600u);
    }
  }
}

}  // namespace
}  // namespace steno::engine
