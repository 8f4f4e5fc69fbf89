// The kernels room's interface as the model uses it.
#pragma once
#include "kernels/matvec.h"
#include "quant/quant.h"
#include "runtime/threadpool.h"
