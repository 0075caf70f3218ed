// Job vocabulary (core/job.h) and job ids (store/job_id.h).
#include <gtest/gtest.h>

#include <set>

#include "core/job.h"
#include "store/job_id.h"

namespace steno {
namespace {

TEST(StoreJob, StateAndPriorityNamesRoundTrip) {
  for (auto s : {JobState::kPending, JobState::kLoading, JobState::kProcessing,
                 JobState::kCompleted, JobState::kFailed, JobState::kCancelled}) {
    EXPECT_EQ(ParseJobState(JobStateName(s)), s);
  }
  EXPECT_FALSE(ParseJobState("running").has_value());
  EXPECT_TRUE(IsFinal(JobState::kCancelled));
  EXPECT_FALSE(IsFinal(JobState::kProcessing));
  EXPECT_TRUE(IsActive(JobState::kLoading));
  EXPECT_FALSE(IsActive(JobState::kPending));
  for (auto p : {Priority::kHigh, Priority::kNormal, Priority::kLow}) {
    EXPECT_EQ(ParsePriority(PriorityName(p)), p);
  }
  EXPECT_FALSE(ParsePriority("urgent").has_value());
}

TEST(StoreJob, ParamsRoundTripThroughJson) {
  JobParams p;
  p.task = "translate";
  p.language = "ja";
  p.prompt = "Names: Sakura";
  p.temperature = 0.4f;
  p.response_format = "srt";
  p.word_timestamps = true;
  p.device = "cuda:1";
  p.keep_alive_s = 0;
  p.timeout_s = 120;
  p.filename = "talk.mp3";
  auto back = JobParamsFromJson(JobParamsToJson(p));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->task, "translate");
  EXPECT_EQ(back->language, "ja");
  EXPECT_EQ(back->prompt, "Names: Sakura");
  EXPECT_FLOAT_EQ(back->temperature, 0.4f);
  EXPECT_EQ(back->response_format, "srt");
  EXPECT_TRUE(back->word_timestamps);
  EXPECT_EQ(back->device, "cuda:1");
  EXPECT_EQ(back->keep_alive_s, 0);
  EXPECT_EQ(back->timeout_s, 120);
  EXPECT_EQ(back->filename, "talk.mp3");
  EXPECT_EQ(back->chunking_strategy, "");
  EXPECT_FALSE(back->vad.has_value());
}

TEST(StoreJob, VadDecisionRoundTripsAndOldJobsRunWithout) {
  JobParams p;
  p.chunking_strategy = "server_vad";
  p.vad = VadSettings{0.35f, 250, 700};
  auto back = JobParamsFromJson(JobParamsToJson(p));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->chunking_strategy, "server_vad");
  ASSERT_TRUE(back->vad.has_value());
  EXPECT_EQ(*back->vad, (VadSettings{0.35f, 250, 700}));

  // A job stored before VAD existed (no such fields) reads back as one without VAD.
  auto old = JobParamsFromJson(R"({"task":"transcribe","language":"en","prompt":"",)"
                               R"("temperature":0,"response_format":"json"})");
  ASSERT_TRUE(old.ok()) << old.error().message;
  EXPECT_FALSE(old->vad.has_value());
  EXPECT_EQ(old->chunking_strategy, "");
  EXPECT_EQ(JobParamsFromJson(R"({"vad":3})").error().code, "bad_job_params");
}

TEST(StoreJob, ParamsToleranceAndErrors) {
  auto defaults = JobParamsFromJson(R"({"language":"en","from_the_future":true})");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->language, "en");
  EXPECT_EQ(defaults->task, "transcribe");
  EXPECT_FALSE(defaults->keep_alive_s.has_value());
  EXPECT_EQ(JobParamsFromJson("[1,2]").error().code, "bad_job_params");
  EXPECT_EQ(JobParamsFromJson("{").error().code, "bad_job_params");
  EXPECT_EQ(JobParamsFromJson(R"({"temperature":"hot"})").error().code, "bad_job_params");
}

TEST(StoreJob, JobIdsAreUniqueValidAndSortByTime) {
  std::set<std::string> ids;
  for (int i = 0; i < 2000; ++i) {
    auto id = store::NewJobId(1'700'000'000'000 + i / 100);
    ASSERT_TRUE(store::IsValidJobId(id)) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 2000u);
  EXPECT_LT(store::NewJobId(1'700'000'000'000), store::NewJobId(1'700'000'000'001));
  EXPECT_LT(store::NewJobId(1'700'000'000'999), store::NewJobId(1'800'000'000'000));
  EXPECT_FALSE(store::IsValidJobId("01HV1DONE00000000000000000"));  // 'O' is not Crockford
  EXPECT_FALSE(store::IsValidJobId("short"));
}

}  // namespace
}  // namespace steno
