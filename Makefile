# steno — the two commands a newcomer needs:
#   make run    install dependencies, build, start the main job
#   make test   install dependencies, build, run the whole test suite
# Options: STENO_CUDA=1 CUDA_ARCH=90 (CUDA build for one architecture), SANITIZE=1 (ASan+UBSan,
# into build-asan), TSAN=1 (ThreadSanitizer, into build-tsan, not with SANITIZE=1: the tests of
# the scheduler, job service, API and runners, less those labelled no_tsan; tests/CMakeLists.txt
# says which and why; tests/tsan.supp lists third-party races), TARGETS="steno make_test_model"
# (build only those).
#   make gpu-bundle   CUDA build for CUDA_ARCH, packed into dist/gpu-bundle for a bare GPU machine

STENO_CUDA ?= 0
CUDA_ARCH  ?= 90
SANITIZE   ?= 0
TSAN       ?= 0
JOBS       ?= $(shell nproc)

ifeq ($(STENO_CUDA),1)
  BUILD ?= build-cuda$(CUDA_ARCH)
else ifeq ($(SANITIZE),1)
  BUILD ?= build-asan
else ifeq ($(TSAN),1)
  BUILD ?= build-tsan
else
  BUILD ?= build
endif

CMAKE_FLAGS := -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
ifeq ($(SANITIZE),1)
  CMAKE_FLAGS += -DSTENO_SANITIZE=ON
  # As for TSAN below: every process the tests start writes what ASan/UBSan find to
  # SAN_REPORTS/*.PID, and any report fails `make test` (UBSan alone would only print and go on).
  SAN_REPORTS := $(CURDIR)/$(BUILD)/sanitizer-reports
  export ASAN_OPTIONS ?= log_path=$(SAN_REPORTS)/asan
  export UBSAN_OPTIONS ?= print_stacktrace=1 log_path=$(SAN_REPORTS)/ubsan
endif
ifeq ($(TSAN),1)
  ifeq ($(SANITIZE),1)
    $(error TSAN=1 and SANITIZE=1 cannot be combined: build them one after the other)
  endif
  CMAKE_FLAGS += -DSTENO_TSAN=ON -DSTENO_BUILD_BENCH=OFF
  # Every process the tests start (steno serve, its runners) reads these too, and writes what it
  # finds to TSAN_REPORTS/report.PID: a race in a runner fails `make test` even when no test
  # looks at the runner's exit status.
  TSAN_REPORTS := $(CURDIR)/$(BUILD)/tsan-reports
  export TSAN_OPTIONS ?= suppressions=$(CURDIR)/tests/tsan.supp second_deadlock_stack=1 log_path=$(TSAN_REPORTS)/report
  CTEST_FLAGS := -LE no_tsan
endif

.PHONY: all deps whisper build test run bench format clean gpu-bundle

all: build

deps:
	@scripts/install-deps

whisper: deps
	@mkdir -p $(BUILD)
	@STENO_CUDA=$(STENO_CUDA) CUDA_ARCH=$(CUDA_ARCH) scripts/build-whisper > $(BUILD)/whisper-prefix

build: whisper
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) -DSTENO_WHISPER_PREFIX=$$(cat $(BUILD)/whisper-prefix) > $(BUILD)/configure.log || (cat $(BUILD)/configure.log; exit 1)
	@cmake --build $(BUILD) -j $(JOBS) $(if $(TARGETS),--target $(TARGETS))

test: build
ifeq ($(TSAN),1)
	@rm -rf $(TSAN_REPORTS) && mkdir -p $(TSAN_REPORTS)
	@cd $(BUILD) && GGML_NO_BACKTRACE=1 ctest --output-on-failure -j $(JOBS) --timeout 900 $(CTEST_FLAGS); \
	  rc=$$?; if [ -n "$$(ls -A $(TSAN_REPORTS))" ]; then cat $(TSAN_REPORTS)/*; \
	  echo "ThreadSanitizer reported the races above (files in $(TSAN_REPORTS))"; exit 1; fi; exit $$rc
else ifeq ($(SANITIZE),1)
	@rm -rf $(SAN_REPORTS) && mkdir -p $(SAN_REPORTS)
	@cd $(BUILD) && GGML_NO_BACKTRACE=1 ctest --output-on-failure -j $(JOBS) --timeout 900; \
	  rc=$$?; if [ -n "$$(ls -A $(SAN_REPORTS))" ]; then cat $(SAN_REPORTS)/*; \
	  echo "AddressSanitizer/UBSan reported the errors above (files in $(SAN_REPORTS))"; exit 1; fi; exit $$rc
else
	@cd $(BUILD) && GGML_NO_BACKTRACE=1 ctest --output-on-failure -j $(JOBS) --timeout 900
endif

run: build
	@BUILD=$(BUILD) scripts/run-demo

bench: build
	@BUILD=$(BUILD) bench/transcribe_vs_whisper_cli.sh
	@BUILD=$(BUILD) bench/api_vs_whisper_server.sh
	@BUILD=$(BUILD) bench/server_vs_whisper_server.sh
	@BUILD=$(BUILD) bench/compute_limit.sh
	@BUILD=$(BUILD) bench/vad_half_silence.sh
	@BUILD=$(BUILD) bench/chunk_streams.sh cpu
	@BUILD=$(BUILD) bench/chunk_streams.sh gpu
	@BUILD=$(BUILD) bench/realtime_latency.sh cpu
	@BUILD=$(BUILD) bench/realtime_latency.sh gpu
	@BUILD=$(BUILD) bench/api_load.sh; rc=$$?; [ $$rc -ne 3 ] || echo "api_load: a latency target missed (figures above)"; [ $$rc -eq 0 ] || [ $$rc -eq 3 ]
	@for b in $(BUILD)/bench/*_bench; do echo "== $$b"; $$b || exit 1; done

gpu-bundle:
	@CUDA_ARCH=$(CUDA_ARCH) JOBS=$(JOBS) scripts/gpu-bundle

format:
	@clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD)
