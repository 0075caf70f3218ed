// Where steno keeps its files. Each function honours its override first:
//   DataDir():   $STENO_DATA_DIR, else $XDG_DATA_HOME/steno, else ~/.local/share/steno
//   ModelsDir(): $STENO_MODELS, else DataDir()/models
// and where its programs are:
//   RunnerProgram(): steno-runner in the directory of the running executable, where the build
//                    and `make install` put it beside steno; where there is none (the GPU
//                    bundle leaves it out for room), the running executable itself, whose
//                    `runner` subcommand is the same runner. No override: the runner a program
//                    starts is the one it was built with.
#pragma once

#include <string>

namespace steno {

std::string DataDir();
std::string ModelsDir();
std::string RunnerProgram();

}  // namespace steno
