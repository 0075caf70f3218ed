// The runner: a child process that loads one model on one device and runs up to N jobs at once,
// each on its own stream (whisper_state) and thread. Started by RunnerHandle (runner_handle.h) as
// `steno-runner runner --fd 3` (or `steno runner --fd 3`); it speaks the protocol in protocol.h on
// that descriptor.
//
// Lifecycle: wait for `load` -> load the model (while the first inputs the load names in
// "prefetch", [{"path", "name"}], one per stream it asks for, are decoded in that order on a
// thread of their own: a job of such an input uses that decode) -> create and warm up the
// streams (a short silent pass each, so compute buffers exist before the footprint is reported
// and the first real job costs no surprise memory) -> `ready` -> serve `transcribe` / `cancel` /
// `set_streams` until `exit`, end of input (the supervisor is gone) or a protocol violation. A
// heartbeat goes out every heartbeat_ms.
//
// Exit codes: 0 after `exit` or when the supervisor went away; 2 for a protocol violation;
// 3 when the model could not be loaded (after an `error` frame saying why).
#pragma once

namespace steno::runner {

int RunnerMain(int fd);

}  // namespace steno::runner
