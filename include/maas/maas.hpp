// maas/maas.hpp: the whole public API in one include.
#pragma once

#include "maas/autograd.hpp"
#include "maas/error.hpp"
#include "maas/loss.hpp"
#include "maas/nn.hpp"
#include "maas/ops.hpp"
#include "maas/tensor.hpp"
