#include "runners/server/server_kind.h"

#include <algorithm>

#include "runners/server/server_backend.h"

namespace steno::runners {

KindFactory ServerKind(ServerKindOptions options) {
  return [options = std::move(options)](
             const KindContext& context) -> Result<std::unique_ptr<sched::RunnerBackend>> {
    ServerBackendOptions o;
    o.find_model = options.find_model;
    o.host = options.host;
    return std::unique_ptr<sched::RunnerBackend>(
        std::make_unique<ServerBackend>(std::move(o), context));
  };
}

models::DeclaredModel CatalogEntryOf(const ServerModel& model) {
  models::DeclaredModel m;
  m.name = model.name;
  m.kind = kServerKind;
  const bool cpu_only =
      !model.devices.empty() && std::all_of(model.devices.begin(), model.devices.end(),
                                            [](const std::string& d) { return d == "cpu"; });
  // What one server holds before any request; its requests add nothing the ledger can know
  // apart (a server's memory is measured as one footprint).
  m.weights_bytes = cpu_only ? model.ram_bytes : model.vram_bytes;
  m.stream_bytes = 0;
  switch (model.protocol) {
    case ServerProtocol::kOpenAiTranscription:
    case ServerProtocol::kWhisperServer:
      m.capabilities = {models::Capability::kTranscribe, models::Capability::kTranslate};
      break;
    case ServerProtocol::kOpenAiSpeech: m.capabilities = {models::Capability::kSpeech}; break;
    case ServerProtocol::kHttp: break;
  }
  m.allowed_devices = model.devices;
  m.max_streams = model.streams;
  m.keep_alive_s = model.keep_alive_s;
  return m;
}

}  // namespace steno::runners
