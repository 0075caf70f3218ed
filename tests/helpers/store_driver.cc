// store_driver: a real process that uses the job store the way `steno serve` will, so that the
// crash test can kill -9 it at any moment.
//
//   store_driver --data-dir DIR [--keys k1,k2,...] [--work-ms 15] [--chunk-delay-us 150]
//
// On start it opens the store (which requeues jobs a crash left running) and sweeps what a crash
// left behind (retention with grace 0, as the server will before accepting uploads). Then, like
// the HTTP layer, it accepts one upload per key: streams it into the blob store, commits it
// durably, inserts the job with the key as idempotency key, and only then acknowledges it on
// stdout. Meanwhile two workers claim jobs, "process" them (verify the upload, sleep) and
// complete them with a result. It exits 0 when every key is acknowledged and no job is left.
//
// stdout, one line per event (what the test parses):
//   READY <recovered> <blobs_swept> <temp_files_swept>
//   PHASE upload <key> | PHASE process <id> | PHASE complete <id>
//   ACK <key> <id> <digest> <existing 0|1>
//   DONE <id>
//   ALL_DONE
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/log.h"
#include "helpers/store_payload.h"
#include "store/blob_store.h"
#include "store/data_dir.h"

namespace {
using namespace steno;
using namespace steno::store;

std::mutex out_mu;

// One write(2) per line: a line is either fully in the pipe or not at all when we are killed.
void Say(const std::string& line) {
  std::lock_guard lock(out_mu);
  std::string l = line + "\n";
  (void)!write(1, l.data(), l.size());
}

[[noreturn]] void Die(const std::string& what, const Error& e) {
  std::fprintf(stderr, "store_driver: %s: [%s] %s\n", what.c_str(), e.code.c_str(),
               e.message.c_str());
  std::exit(1);
}

struct Options {
  std::string data_dir;
  std::vector<std::string> keys;
  int work_ms = 15;
  int chunk_delay_us = 150;
};

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--data-dir") {
      o.data_dir = value;
    } else if (flag == "--keys") {
      std::stringstream ss(value);
      for (std::string k; std::getline(ss, k, ',');) {
        if (!k.empty()) o.keys.push_back(k);
      }
    } else if (flag == "--work-ms") {
      o.work_ms = std::stoi(value);
    } else if (flag == "--chunk-delay-us") {
      o.chunk_delay_us = std::stoi(value);
    }
  }
  if (o.data_dir.empty()) {
    std::fprintf(stderr, "usage: store_driver --data-dir DIR [--keys a,b,c] [--work-ms N]\n");
    std::exit(2);
  }
  return o;
}

// What the HTTP handler will do for POST /v1/jobs: durable upload, durable job, then 202.
void Submit(JobStore& jobs, const BlobStore& blobs, const std::string& key, int chunk_delay_us) {
  Say("PHASE upload " + key);
  std::string payload = test::StorePayload(key);
  auto writer = blobs.Begin();
  if (!writer.ok()) Die("begin upload", writer.error());
  constexpr size_t kChunk = 8192;  // arrives in pieces, as over a socket
  for (size_t off = 0; off < payload.size(); off += kChunk) {
    if (auto st = writer->Append(std::string_view(payload).substr(off, kChunk)); !st.ok()) {
      Die("append", st.error());
    }
    if (chunk_delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(chunk_delay_us));
  }
  auto blob = writer->Commit();
  if (!blob.ok()) Die("commit upload", blob.error());
  NewJob job;
  job.model = "tiny";
  job.blob_digest = blob->digest;
  job.idempotency_key = key;
  job.params.filename = key + ".wav";
  auto inserted = jobs.Insert(job);
  if (!inserted.ok()) Die("insert", inserted.error());
  Say("ACK " + key + " " + inserted->job.id + " " + blob->digest + " " +
      (inserted->existing ? "1" : "0"));
}

void Work(JobStore& jobs, const BlobStore& blobs, const std::string& owner, int work_ms,
          const std::atomic<bool>& submitting) {
  for (;;) {
    auto claimed = jobs.Claim({owner, 30'000, std::nullopt, {}});
    if (!claimed.ok()) Die("claim", claimed.error());
    if (!claimed->has_value()) {
      auto counts = jobs.Count();
      if (!counts.ok()) Die("count", counts.error());
      bool idle = (*counts)[JobState::kPending] == 0 && (*counts)[JobState::kLoading] == 0 &&
                  (*counts)[JobState::kProcessing] == 0;
      if (!submitting && idle) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      continue;
    }
    const Job& job = **claimed;
    Say("PHASE process " + job.id);
    if (auto st = jobs.MarkProcessing(job.id, owner); !st.ok()) Die("mark processing", st.error());
    // The runner reads the upload; a job must never point at a missing or partial one.
    if (auto st = blobs.Verify(job.blob_digest); !st.ok()) {
      (void)jobs.Fail(job.id, owner, st.error());
      Die("verify upload of " + job.id, st.error());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(work_ms));
    nlohmann::json result = {
        {"key", job.idempotency_key},
        {"digest", job.blob_digest},
        {"attempt", job.attempt},
        {"segments", nlohmann::json::array()},
    };
    for (int i = 0; i < 40; ++i) {
      result["segments"].push_back(
          {{"id", i},
           {"start", i * 1.5},
           {"end", i * 1.5 + 1.5},
           {"text", " segment " + std::to_string(i) + " of " + job.idempotency_key}});
    }
    Say("PHASE complete " + job.id);
    if (auto st = jobs.Complete(job.id, owner, result.dump()); !st.ok()) {
      Die("complete " + job.id, st.error());
    }
    Say("DONE " + job.id);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options = ParseArgs(argc, argv);
  log::Init();
  log::SetLevel("warn");

  // Exactly what the server does on start: recover, then sweep crash leftovers.
  auto opened = OpenDataDir(options.data_dir);
  if (!opened.ok()) Die("open data dir", opened.error());
  auto& jobs = opened->jobs;
  const BlobStore& blobs = opened->blobs;
  Say("READY " + std::to_string(opened->recovered) + " " +
      std::to_string(opened->swept.blobs_removed) + " " +
      std::to_string(opened->swept.temp_files_removed));

  std::atomic<bool> submitting{true};
  std::string owner = "driver-" + std::to_string(getpid());
  std::vector<std::thread> workers;
  for (int w = 0; w < 2; ++w) {
    workers.emplace_back(Work, std::ref(*jobs), std::cref(blobs), owner + "-w" + std::to_string(w),
                         options.work_ms, std::cref(submitting));
  }
  for (const auto& key : options.keys) Submit(*jobs, blobs, key, options.chunk_delay_us);
  submitting = false;
  for (auto& t : workers) t.join();
  Say("ALL_DONE");
  return 0;
}
