// maas/nn.hpp: modules and layers.
#pragma once

#include "maas/nn/decode.hpp"
#include "maas/nn/init.hpp"
#include "maas/nn/layers.hpp"
#include "maas/nn/model.hpp"
#include "maas/nn/module.hpp"
#include "maas/nn/network.hpp"
#include "maas/nn/quantized.hpp"
#include "maas/nn/sequential.hpp"
