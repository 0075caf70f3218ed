#include "runners/server/server_model.h"

namespace steno::runners {
namespace {

constexpr std::pair<ServerProtocol, std::string_view> kProtocols[] = {
    {ServerProtocol::kOpenAiTranscription, "openai-transcription"},
    {ServerProtocol::kWhisperServer, "whisper-server"},
    {ServerProtocol::kOpenAiSpeech, "openai-speech"},
    {ServerProtocol::kHttp, "http"},
};

}  // namespace

const char* ServerProtocolName(ServerProtocol protocol) {
  for (const auto& [p, name] : kProtocols) {
    if (p == protocol) return name.data();
  }
  return "http";
}

std::optional<ServerProtocol> ParseServerProtocol(std::string_view name) {
  for (const auto& [p, n] : kProtocols) {
    if (n == name) return p;
  }
  return std::nullopt;
}

}  // namespace steno::runners
