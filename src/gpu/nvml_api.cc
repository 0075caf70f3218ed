#include "gpu/nvml_api.h"

#include <dlfcn.h>

namespace steno::gpu::nvml {
namespace {

// The layouts nvml.h gives these structs on LP64 Linux; a mismatch would corrupt the stack.
static_assert(sizeof(Memory) == 24);
static_assert(sizeof(Utilization) == 8);
static_assert(sizeof(PciInfo) == 68);
static_assert(sizeof(ProcessInfo) == 24);

// Resolves the first of `names` the library has into `fn`.
template <class Fn>
bool Resolve(void* library, Fn& fn, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (void* symbol = dlsym(library, name)) {
      fn = reinterpret_cast<Fn>(symbol);
      return true;
    }
  }
  return false;
}

}  // namespace

Result<Api> LoadApi(const std::string& path) {
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!library) {
    const char* why = dlerror();
    return Error(ErrorKind::kUnavailable, "nvml_unavailable",
                 "cannot load NVML (" + std::string(why ? why : path) + ")");
  }
  Api api;
  api.library = library;
  const char* missing = nullptr;
  auto require = [&](auto& fn, std::initializer_list<const char*> names) {
    if (!Resolve(library, fn, names) && !missing) missing = *names.begin();
  };
  // Versioned names first: the unversioned ones are the old ABI kept for old binaries.
  require(api.Init, {"nvmlInit_v2"});
  require(api.Shutdown, {"nvmlShutdown"});
  require(api.ErrorString, {"nvmlErrorString"});
  require(api.DeviceGetCount, {"nvmlDeviceGetCount_v2"});
  require(api.DeviceGetHandleByIndex, {"nvmlDeviceGetHandleByIndex_v2"});
  require(api.DeviceGetUUID, {"nvmlDeviceGetUUID"});
  require(api.DeviceGetMemoryInfo, {"nvmlDeviceGetMemoryInfo"});
  if (missing) {
    dlclose(library);
    return Error(ErrorKind::kUnavailable, "nvml_unavailable",
                 "the NVML library " + path + " lacks " + missing + " (driver too old?)");
  }
  Resolve(library, api.DeviceGetPciInfo, {"nvmlDeviceGetPciInfo_v3", "nvmlDeviceGetPciInfo_v2"});
  Resolve(library, api.DeviceGetName, {"nvmlDeviceGetName"});
  Resolve(library, api.DeviceGetUtilizationRates, {"nvmlDeviceGetUtilizationRates"});
  Resolve(library, api.DeviceGetTemperature, {"nvmlDeviceGetTemperature"});
  Resolve(library, api.DeviceGetPowerUsage, {"nvmlDeviceGetPowerUsage"});
  Resolve(library, api.DeviceGetEnforcedPowerLimit, {"nvmlDeviceGetEnforcedPowerLimit"});
  Resolve(library, api.DeviceGetComputeRunningProcesses,
          {"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetComputeRunningProcesses_v2"});
  return api;
}

void UnloadApi(Api& api) {
  if (api.library) dlclose(api.library);
  api.library = nullptr;
}

}  // namespace steno::gpu::nvml
