// The server kind's registration: the factory the Runtime adds under kServerKind, and how a
// declared server model appears in the model catalog.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "models/model_catalog.h"
#include "runners/kind_registry.h"
#include "runners/server/server_model.h"

namespace steno::runners {

struct ServerKindOptions {
  // The current declaration of a server model by name (nullopt: none). Read at each start, so a
  // reloaded config (SIGHUP) applies to the next start of that model.
  std::function<std::optional<ServerModel>(const std::string& name)> find_model;
  std::string host = "127.0.0.1";  // where servers listen ({host}) and steno reaches them
};

// The factory that builds the server kind's backend (server_backend.h) from the Runtime's context.
KindFactory ServerKind(ServerKindOptions options);

// The catalog entry of a server model: kind "server", its declared footprint (vram; ram on the
// CPU), capabilities by protocol (transcription protocols: transcribe + translate;
// openai-speech: speech; http: none), allowed devices, streams and keep-alive; growth charged,
// never recycled (ModelSpec::recycle_on_growth).
models::DeclaredModel CatalogEntryOf(const ServerModel& model);

}  // namespace steno::runners
