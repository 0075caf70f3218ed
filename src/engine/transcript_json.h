// Reading a Transcript back from its verbose_json form (formats.h ToVerboseJson), which carries
// every Transcript field. Runners send results to the supervisor this way and the job store keeps
// them this way, so one format serves the wire, the database and the API.
#pragma once

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "engine/decode_params.h"
#include "engine/transcript.h"

namespace steno::engine {

// kBadInput "bad_transcript" when a required field is missing or has the wrong type.
Result<Transcript> TranscriptFromVerboseJson(const nlohmann::json& j);

// DecodeParams as a JSON object and back. Missing fields keep their defaults; a field of the
// wrong type is kBadInput "bad_param". The result is not range-checked (ValidateDecodeParams).
nlohmann::json DecodeParamsToJson(const DecodeParams& p);
Result<DecodeParams> DecodeParamsFromJson(const nlohmann::json& j);

}  // namespace steno::engine
