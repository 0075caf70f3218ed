// A process that holds memory on a simulated GPU until it is killed: what a runner (or another
// tenant's job) does, for tests that check the memory is released when the process dies.
//   gpu_sim_tenant DATA_DIR DEVICE SIZE
// Joins the simulation in DATA_DIR, charges SIZE on physical device DEVICE to itself, prints
// "holding PID BYTES" and waits. Exits 4 if the charge is refused as out of memory, 2 on bad
// arguments, 1 otherwise.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "gpu/simulated_devices.h"
#include "gpu/size.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: gpu_sim_tenant DATA_DIR DEVICE SIZE\n");
    return 2;
  }
  auto bytes = steno::gpu::ParseSize(argv[3]);
  if (!bytes.ok()) {
    std::fprintf(stderr, "%s\n", bytes.error().message.c_str());
    return 2;
  }
  auto sim = steno::gpu::SimulatedDevices::Open(argv[1], "");
  if (!sim.ok()) {
    std::fprintf(stderr, "%s\n", sim.error().message.c_str());
    return 1;
  }
  steno::Status charged = (*sim)->Charge(std::stoi(argv[2]), *bytes);
  if (!charged.ok()) {
    std::fprintf(stderr, "%s\n", charged.error().message.c_str());
    return charged.error().kind == steno::ErrorKind::kOutOfMemory ? 4 : 1;
  }
  std::printf("holding %d %lld\n", getpid(), static_cast<long long>(*bytes));
  std::fflush(stdout);
  for (;;) pause();
}
