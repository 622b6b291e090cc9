#include "ddkernels.h"
