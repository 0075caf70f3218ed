// What one input costs before any transcription: Probe (the server's check of an upload) and
// Decode (probe + decode to 16 kHz mono float, a runner's or the server's) of each test clip.
//
//   audio_input_bench                      (from the build dir: reads test-data/media)
//   STENO_MEDIA_DIR=DIR audio_input_bench  (the clips of tests/support/make_test_data.sh)
//
// CPU time per call is the load-independent figure. A 16 kHz WAV should cost well under 1 ms
// to probe: FFmpeg's stream analysis is skipped where the header says everything (probe.cc).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>

#include "audio/decoder.h"
#include "audio/probe.h"

namespace {

std::string MediaDir() {
  const char* dir = std::getenv("STENO_MEDIA_DIR");
  return dir && *dir ? dir : "test-data/media";
}

void BM_Probe(benchmark::State& state, const std::string& name) {
  const std::string path = MediaDir() + "/" + name;
  for (auto _ : state) {
    auto info = steno::audio::Probe(path);
    if (!info) return state.SkipWithError(info.error().message.c_str());
    benchmark::DoNotOptimize(info->duration_s);
  }
}

void BM_Decode(benchmark::State& state, const std::string& name) {
  const std::string path = MediaDir() + "/" + name;
  for (auto _ : state) {
    auto pcm = steno::audio::Decode(path);
    if (!pcm) return state.SkipWithError(pcm.error().message.c_str());
    benchmark::DoNotOptimize(pcm->data());
  }
}

const bool registered = [] {
  for (const char* name : {"speech.wav", "speech_44k_stereo.wav", "speech.flac", "speech.mp3",
                           "speech.ogg", "speech.m4a"}) {
    benchmark::RegisterBenchmark((std::string("BM_Probe/") + name).c_str(), BM_Probe, name)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("BM_Decode/") + name).c_str(), BM_Decode, name)
        ->Unit(benchmark::kMillisecond);
  }
  return true;
}();

}  // namespace
