#include "runners/server/server_speech.h"

namespace steno::runners {

// Not served yet: every speech work item fails as bad input, which is never retried.
WorkOutcome RunSpeech(const WorkItem& item) {
  return WorkOutcome::Fail(
      runner::RunnerErrorKind::kBadInput,
      "server model " + item.model.name + ": text-to-speech requests are not supported yet");
}

}  // namespace steno::runners
