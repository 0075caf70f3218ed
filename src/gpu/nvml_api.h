// The slice of NVML (NVIDIA Management Library) steno uses, declared here so that steno builds
// without CUDA headers and runs without an NVIDIA driver: libnvidia-ml.so.1 is opened at run
// time. Types and constants follow nvml.h (NVML API version 12); only what is used is declared.
// Tests fill an Api with fakes to exercise the sampling code without a GPU.
#pragma once

#include <string>

#include "core/result.h"

namespace steno::gpu::nvml {

using Return = int;  // nvmlReturn_t
inline constexpr Return kSuccess = 0;
inline constexpr Return kErrorUninitialized = 1;
inline constexpr Return kErrorInvalidArgument = 2;
inline constexpr Return kErrorNotSupported = 3;
inline constexpr Return kErrorNoPermission = 4;
inline constexpr Return kErrorNotFound = 6;
inline constexpr Return kErrorInsufficientSize = 7;
inline constexpr Return kErrorDriverNotLoaded = 9;
inline constexpr Return kErrorGpuIsLost = 15;
inline constexpr Return kErrorUnknown = 999;

// nvmlProcessInfo_t.usedGpuMemory when the driver does not know (NVML_VALUE_NOT_AVAILABLE).
inline constexpr unsigned long long kValueNotAvailable = ~0ULL;
inline constexpr unsigned int kTemperatureGpu = 0;   // NVML_TEMPERATURE_GPU
inline constexpr unsigned int kUuidBufferSize = 96;  // NVML_DEVICE_UUID_V2_BUFFER_SIZE
inline constexpr unsigned int kNameBufferSize = 96;  // NVML_DEVICE_NAME_V2_BUFFER_SIZE

struct DeviceSt;
using Device = DeviceSt*;  // nvmlDevice_t

struct Memory {  // nvmlMemory_t (v1): bytes
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

struct Utilization {  // nvmlUtilization_t: percent of the last sample period
  unsigned int gpu;
  unsigned int memory;
};

struct PciInfo {  // nvmlPciInfo_t, as filled by nvmlDeviceGetPciInfo_v3
  char busIdLegacy[16];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[32];
};

struct ProcessInfo {  // nvmlProcessInfo_t (the v2 layout), as filled by ..._v3
  unsigned int pid;
  unsigned long long usedGpuMemory;  // bytes, or kValueNotAvailable
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};

// Entry points. The first group is required; a null pointer in the second group means this
// driver lacks the function and the value it gives is reported as unknown.
struct Api {
  Return (*Init)() = nullptr;                                         // nvmlInit_v2
  Return (*Shutdown)() = nullptr;                                     // nvmlShutdown
  const char* (*ErrorString)(Return) = nullptr;                       // nvmlErrorString
  Return (*DeviceGetCount)(unsigned int*) = nullptr;                  // nvmlDeviceGetCount_v2
  Return (*DeviceGetHandleByIndex)(unsigned int, Device*) = nullptr;  // ..._v2
  Return (*DeviceGetUUID)(Device, char*, unsigned int) = nullptr;
  Return (*DeviceGetMemoryInfo)(Device, Memory*) = nullptr;

  Return (*DeviceGetPciInfo)(Device, PciInfo*) = nullptr;  // _v3, else _v2 (same layout)
  Return (*DeviceGetName)(Device, char*, unsigned int) = nullptr;
  Return (*DeviceGetUtilizationRates)(Device, Utilization*) = nullptr;
  Return (*DeviceGetTemperature)(Device, unsigned int, unsigned int*) = nullptr;
  Return (*DeviceGetPowerUsage)(Device, unsigned int*) = nullptr;          // milliwatts
  Return (*DeviceGetEnforcedPowerLimit)(Device, unsigned int*) = nullptr;  // milliwatts
  Return (*DeviceGetComputeRunningProcesses)(Device, unsigned int*,
                                             ProcessInfo*) = nullptr;  // _v3/_v2

  void* library = nullptr;  // dlopen handle, null for an Api built by hand
};

// dlopens `path` (default "libnvidia-ml.so.1", found through the loader's search path) and
// resolves the entry points. kUnavailable, with dlerror's text, if the library or a required
// function is missing. Does not call Init.
Result<Api> LoadApi(const std::string& path = "libnvidia-ml.so.1");

// dlcloses the library of an Api from LoadApi (nothing for a hand-built one).
void UnloadApi(Api& api);

}  // namespace steno::gpu::nvml
