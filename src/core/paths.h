// Where steno keeps its files. Each function honours its override first:
//   DataDir():   $STENO_DATA_DIR, else $XDG_DATA_HOME/steno, else ~/.local/share/steno
//   ModelsDir(): $STENO_MODELS, else DataDir()/models
#pragma once

#include <string>

namespace steno {

std::string DataDir();
std::string ModelsDir();

}  // namespace steno
