// OpenAI Realtime transcription events as /v1/realtime reads and writes them
// (api/realtime_protocol.h), and the 24 kHz → 16 kHz conversion of the input audio.
#include "api/realtime_protocol.h"

#include <cmath>

#include <gtest/gtest.h>

#include "core/base64.h"

namespace steno::api::realtime {
namespace {

using nlohmann::json;

ProtocolError ErrorOf(const std::string& text) {
  auto parsed = ParseClientEvent(text);
  EXPECT_TRUE(std::holds_alternative<ProtocolError>(parsed)) << text;
  if (auto* e = std::get_if<ProtocolError>(&parsed)) return *e;
  return {};
}

ClientEvent EventOf(const json& j) {
  auto parsed = ParseClientEvent(j.dump());
  EXPECT_TRUE(std::holds_alternative<ClientEvent>(parsed)) << j.dump();
  if (auto* e = std::get_if<ClientEvent>(&parsed)) return *e;
  return {};
}

TEST(RealtimeProtocol, BetaUpdateSetsModelLanguagePromptTurnDetectionAndFormat) {
  ClientEvent e = EventOf({{"type", "transcription_session.update"},
                           {"event_id", "e1"},
                           {"session",
                            {{"input_audio_format", "pcm16_16000"},
                             {"input_audio_transcription",
                              {{"model", "tiny"}, {"language", "de"}, {"prompt", "Namen"}}},
                             {"turn_detection",
                              {{"type", "server_vad"},
                               {"threshold", 0.7},
                               {"prefix_padding_ms", 100},
                               {"silence_duration_ms", 800}}}}}});
  EXPECT_EQ(e.type, ClientEvent::Type::kUpdate);
  EXPECT_EQ(e.event_id, "e1");
  SessionConfig c;
  ApplyUpdate(e, c);
  EXPECT_EQ(c.model, "tiny");
  EXPECT_EQ(c.settings.language, "de");
  EXPECT_EQ(c.settings.prompt, "Namen");
  EXPECT_EQ(c.input_rate, 16'000);
  ASSERT_TRUE(c.settings.turn_detection);
  EXPECT_FLOAT_EQ(c.settings.turn_detection->threshold, 0.7f);
  EXPECT_EQ(c.settings.turn_detection->prefix_padding_ms, 100);
  EXPECT_EQ(c.settings.turn_detection->silence_duration_ms, 800);

  // Fields left out stay; turn_detection null means manual commits.
  ApplyUpdate(EventOf({{"type", "transcription_session.update"},
                       {"session", {{"turn_detection", nullptr}}}}),
              c);
  EXPECT_EQ(c.model, "tiny");
  EXPECT_FALSE(c.settings.turn_detection);
  json session = SessionJson(c, "sess_1");
  EXPECT_TRUE(session["turn_detection"].is_null());
  EXPECT_EQ(session["input_audio_format"], "pcm16_16000");
}

TEST(RealtimeProtocol, AppendDecodesBase64Pcm16) {
  const int16_t samples[] = {1, -2, 32767};
  const std::string audio =
      Base64Encode(std::string_view(reinterpret_cast<const char*>(samples), sizeof samples));
  ClientEvent e = EventOf({{"type", "input_audio_buffer.append"}, {"audio", audio}});
  EXPECT_EQ(e.type, ClientEvent::Type::kAppend);
  EXPECT_EQ(e.pcm, (std::vector<int16_t>{1, -2, 32767}));
}

TEST(RealtimeProtocol, BadEventsNameTheirCodeAndField) {
  EXPECT_EQ(ErrorOf("[1, 2]").code, "invalid_json");
  EXPECT_EQ(ErrorOf("{}").param, "type");
  auto unknown = ErrorOf(R"({"type": "response.create", "event_id": "x"})");
  EXPECT_EQ(unknown.code, "unknown_event");
  EXPECT_EQ(unknown.event_id, "x");
  EXPECT_EQ(ErrorOf(R"({"type": "input_audio_buffer.append", "audio": "a b"})").code,
            "invalid_base64");
  EXPECT_EQ(ErrorOf(R"({"type": "input_audio_buffer.append"})").param, "audio");
  EXPECT_EQ(ErrorOf(R"({"type": "transcription_session.update", "session": {"turn_detection":
            {"threshold": 2}}})")
                .param,
            "session.turn_detection.threshold");
  EXPECT_EQ(ErrorOf(R"({"type": "session.update", "session": {"type": "realtime"}})").code,
            "unsupported_session_type");
  json error = ErrorEvent("event_1", ErrorOf(R"({"type": "nope"})"));
  EXPECT_EQ(error["type"], "error");
  EXPECT_EQ(error["error"]["type"], "invalid_request_error");
  EXPECT_EQ(error["error"]["param"], "type");
  EXPECT_TRUE(error["error"]["event_id"].is_null());
}

TEST(RealtimeProtocol, RunnerEventsBecomeOpenAiEventsWithItemIds) {
  live::Event e;
  e.kind = live::Event::Kind::kCompleted;
  e.item = 3;
  e.text = "hello";
  e.audio_start_ms = 100;
  e.audio_end_ms = 900;
  json j = *RunnerEventJson("ev", e);
  EXPECT_EQ(j["type"], "conversation.item.input_audio_transcription.completed");
  EXPECT_EQ(j["item_id"], "item_000003");
  EXPECT_EQ(j["transcript"], "hello");
  e.kind = live::Event::Kind::kCommitted;
  j = *RunnerEventJson("ev", e);
  EXPECT_EQ(j["previous_item_id"], "item_000002");
  e.kind = live::Event::Kind::kFailed;
  e.item = 0;
  e.code = "buffer_full";
  j = *RunnerEventJson("ev", e);
  EXPECT_EQ(j["type"], "error");
  EXPECT_EQ(j["error"]["code"], "buffer_full");
}

TEST(RealtimeProtocol, The24kHzStreamBecomesTwoThirdsAsMany16kHzSamples) {
  Resampler r(24'000);
  std::vector<int16_t> in(2400);
  size_t out = 0;
  for (int chunk = 0; chunk < 10; ++chunk) {
    for (size_t i = 0; i < in.size(); ++i) {
      in[i] = static_cast<int16_t>(8000 * std::sin(2 * M_PI * 440 * (chunk * 2400 + i) / 24000.0));
    }
    out += r.Convert(in).size();
  }
  out += r.Flush().size();
  EXPECT_NEAR(static_cast<double>(out), 16000, 16);
  Resampler same(16'000);
  EXPECT_EQ(same.Convert(in), in);
}

}  // namespace
}  // namespace steno::api::realtime
