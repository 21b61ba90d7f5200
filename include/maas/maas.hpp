// maas/maas.hpp: the whole public API in one include.
#pragma once

#include "maas/autograd.hpp"
#include "maas/error.hpp"
#include "maas/loss.hpp"
#include "maas/nn.hpp"
#include "maas/ops.hpp"
#include "maas/optim/adam.hpp"
#include "maas/optim/clip.hpp"
#include "maas/optim/optimizer.hpp"
#include "maas/optim/rmsprop.hpp"
#include "maas/optim/scheduler.hpp"
#include "maas/optim/sgd.hpp"
#include "maas/tensor.hpp"
