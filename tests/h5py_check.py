#!/usr/bin/env python3
"""h5py reads a maas training checkpoint as Keras' legacy .h5 loader would.

Usage: h5py_check.py MAAS_TESTS WORKDIR

Runs `MAAS_TESTS [h5py-sample]` (a hidden Catch2 case in tests/checkpoint/test_checkpoint.cpp)
to write WORKDIR/checkpoint.h5 and WORKDIR/checkpoint.h5.expect (the layers,
each weight's Keras shape and sum as maas sees them, an input batch and maas'
outputs for it), then checks with h5py: the root attributes and model_config
JSON, layer_names against the config, each layer's weight_names resolving to
datasets of the expected shapes and values, the optimizer_weights and
training_state groups, and that the model run as Keras runs it (channels_last,
numpy, from the file's config and weights alone) predicts maas' outputs.

Exit status: 0 ok, 1 a check failed, 77 h5py is not installed (ctest: skipped).
"""
import json
import os
import subprocess
import sys

try:
    import h5py
    import numpy as np
except ImportError:
    print("h5py_check: h5py (or numpy) is not installed: skipped")
    sys.exit(77)


def text(value):
    """An HDF5 string attribute as str, whether h5py returns bytes or str."""
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def strings(attr):
    """A string-list attribute (fixed- or variable-length) as a list of str."""
    return [text(v) for v in attr]


def check(cond, message):
    if not cond:
        print("h5py_check: FAILED: " + message)
        sys.exit(1)


def keras_forward(layers, weights, x):
    """Runs a Sequential's model_config on x (NHWC) with Keras' inference semantics,
    for the layer kinds of the sample (valid convolutions and pools)."""
    for layer in layers:
        cls, cfg = layer["class_name"], layer["config"]
        w = [np.asarray(weights[cfg["name"]][n]) for n in strings(weights[cfg["name"]].attrs["weight_names"])]
        if cls == "Conv2D":
            check(cfg["padding"] == "valid" and cfg["strides"] == [1, 1], "sample conv options")
            k = w[0]  # (kh, kw, in, out)
            kh, kw = k.shape[:2]
            n, h, wd, _ = x.shape
            out = np.zeros((n, h - kh + 1, wd - kw + 1, k.shape[3]))
            for i in range(out.shape[1]):
                for j in range(out.shape[2]):
                    out[:, i, j, :] = np.tensordot(x[:, i:i + kh, j:j + kw, :], k, axes=([1, 2, 3], [0, 1, 2]))
            x = out + (w[1] if cfg["use_bias"] else 0)
            check(cfg["activation"] == "linear", "sample conv activation")
        elif cls == "BatchNormalization":
            gamma, beta, mean, var = w
            x = (x - mean) / np.sqrt(var + cfg["epsilon"]) * gamma + beta
        elif cls == "ReLU":
            x = np.maximum(x, 0)
        elif cls == "MaxPooling2D":
            p = cfg["pool_size"][0]
            n, h, wd, c = x.shape
            x = x[:, :h // p * p, :wd // p * p, :].reshape(n, h // p, p, wd // p, p, c).max(axis=(2, 4))
        elif cls == "Flatten":
            x = x.reshape(x.shape[0], -1)  # H, W, C order, as Keras
        elif cls == "Dropout":
            pass
        elif cls == "Dense":
            x = x @ w[0] + (w[1] if cfg["use_bias"] else 0)
        else:
            check(False, "keras_forward: no numpy version of " + cls)
    return x


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tests, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "checkpoint.h5")
    for stale in (path, path + ".expect"):
        if os.path.exists(stale):
            os.remove(stale)
    env = dict(os.environ, MAAS_H5PY_OUT=path)
    subprocess.run([tests, "[h5py-sample]"], env=env, check=True, stdout=subprocess.DEVNULL)

    expect_layers, expect_weights = [], {}
    with open(path + ".expect") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("input", "output"):
                rank = 4 if parts[0] == "input" else 2
                shape = tuple(int(d) for d in parts[1:1 + rank])
                expect_weights["@" + parts[0]] = np.array([float(v) for v in parts[1 + rank:]]).reshape(shape)
            elif parts[0] == "layer":
                expect_layers.append((parts[1], parts[2]))
            elif parts[0] == "weight":
                sum_at = parts.index("sum")
                expect_weights[parts[1]] = (tuple(int(d) for d in parts[2:sum_at]), float(parts[sum_at + 1]))

    with h5py.File(path, "r") as f:
        check(text(f.attrs["keras_version"]).startswith("2."), "keras_version")
        check(text(f.attrs["backend"]) == "tensorflow", "backend")
        config = json.loads(text(f.attrs["model_config"]))
        check(config["class_name"] == "Sequential", "model_config class_name")
        layers = config["config"]["layers"]
        check(layers[0]["class_name"] == "InputLayer", "an InputLayer first")
        check(layers[0]["config"]["batch_input_shape"] == [None, 6, 6, 1], "channels_last input shape")
        config_layers = [(l["config"]["name"], l["class_name"]) for l in layers[1:]]
        check(config_layers == expect_layers, "config layers %s vs %s" % (config_layers, expect_layers))

        weights = f["model_weights"]
        names = strings(weights.attrs["layer_names"])
        check(names == [n for n, _ in expect_layers], "layer_names %s" % names)
        found = 0
        for name in names:
            for wn in strings(weights[name].attrs["weight_names"]):
                value = np.asarray(weights[name][wn])  # as Keras' load_weights_from_hdf5_group reads it
                check(value.dtype == np.float32 and np.all(np.isfinite(value)), wn + " holds finite float32")
                key = name + "/" + wn
                if key in expect_weights:
                    shape, total = expect_weights[key]
                    check(value.shape == shape, "%s shape %s, expected %s" % (key, value.shape, shape))
                    check(abs(float(value.astype(np.float64).sum()) - total) <= 1e-5 * (1 + abs(total)),
                          "%s sums to %r, expected %r" % (key, float(value.sum()), total))
                    found += 1
        check(found == len(expect_weights) - 2, "found %d of %d weights" % (found, len(expect_weights) - 2))
        x = expect_weights["@input"].transpose(0, 2, 3, 1)  # NCHW -> NHWC
        y = keras_forward(layers[1:], weights, x)
        diff = float(np.max(np.abs(y - expect_weights["@output"])))
        check(diff < 1e-4, "the channels_last forward pass differs from maas' outputs by %g" % diff)

        opt = f["optimizer_weights"]
        check(text(opt.attrs["optimizer"]) == "Adam", "optimizer name")
        check(int(opt.attrs["step_count"]) >= 1, "step_count")
        state = strings(opt.attrs["weight_names"])
        check(len(state) > 0 and all(opt[n].dtype == np.float32 for n in state), "optimizer state datasets")
        ts = f["training_state"]
        check(int(ts.attrs["epoch"]) == 1, "training_state epoch")
        check(len(text(ts["rng"].attrs["default_generator"]).split()) == 313, "the mt19937_64 state")

    print("h5py_check: ok: h5py %s read %d layers, %d weights, %d optimizer tensors from %s; its channels_last "
          "forward pass matches maas' outputs within %.1g" % (h5py.__version__, len(names), found, len(state), path, diff))
    return 0


if __name__ == "__main__":
    sys.exit(main())
