// The work items a server model serves, one function per (protocol, task): how one request is
// sent to the server and its answer turned into the work item's result. server_model.h's WORK
// ITEM CONTRACT says what each task receives and returns; server_runner.h runs each work item
// on its own thread with a client connected to the server, and turns a lost connection into
// kind kCrash and an abort into kCancelled or kTimeout.
//
// Adding a task = one function and one row in server_tasks.cc's table. The "proxy" task is not
// here: it holds a stream rather than sending a request (server_runner.h serves it).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "runner/messages.h"
#include "runners/server/server_model.h"
#include "sched/runner_backend.h"

namespace steno::runners {

// What a task function is given.
struct WorkItem {
  const ServerModel& model;
  const sched::JobRunSpec& job;
  httplib::Client& client;  // connected to the server; a cancel aborts its request
  std::string results_dir;  // where results that are files go (KindContext::results_dir)
  // Reports a progress or segment event for this work item (job_id and runner_id are filled).
  std::function<void(sched::BackendEvent)> report;
};

// How a work item ended: kDone with `payload`, or kError of `error_kind` with `message`.
struct WorkOutcome {
  bool ok = false;
  runner::RunnerErrorKind error_kind = runner::RunnerErrorKind::kInternal;
  std::string message;
  nlohmann::json payload;

  static WorkOutcome Done(nlohmann::json payload);
  static WorkOutcome Fail(runner::RunnerErrorKind kind, std::string message);
};

using TaskFn = std::function<WorkOutcome(const WorkItem&)>;

// The function serving `task` on `protocol`; null when the protocol cannot serve that task.
const TaskFn* FindTask(ServerProtocol protocol, std::string_view task);

// The outcome of a request that got no answer or an error status, by the server's own words:
// no answer → kCrash (the connection was lost: the server died or hung up); 4xx → kBadInput
// with the server's message; 503 → kCrash (overloaded or going away: retried); other → kInternal.
// `what` names the request in the message ("POST /inference").
WorkOutcome FailedRequest(const ServerModel& model, const std::string& what,
                          const httplib::Result& result);

// The server's error message from an answer body: OpenAI's {"error": {"message"}}, a plain
// {"error": "..."}, FastAPI's {"detail": ...}, else the body's first 300 bytes.
std::string ServerErrorMessage(const std::string& body);

}  // namespace steno::runners
