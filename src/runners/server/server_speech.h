// The "speech" task of openai-speech servers (server_model.h's WORK ITEM CONTRACT): OpenAI's
// POST /v1/audio/speech, its audio written to KindContext::results_dir as it arrives and shown to
// the job's watcher, if the API watches it, as it is written (speech_stream.h).
#pragma once

#include "runners/server/server_tasks.h"

namespace steno::runners {

WorkOutcome RunSpeech(const WorkItem& item);

}  // namespace steno::runners
