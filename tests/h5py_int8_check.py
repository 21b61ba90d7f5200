#!/usr/bin/env python3
"""h5py reads a quantized maas model and computes what maas computes.

Usage: h5py_int8_check.py MAAS_TESTS WORKDIR

Runs `MAAS_TESTS [h5py-int8-sample]` (a hidden Catch2 case in
tests/checkpoint/test_quantized_checkpoint.cpp) to write WORKDIR/int8.h5 (a
quantized Flatten -> Dense -> Dense model) and WORKDIR/int8.h5.expect (an input
batch of (C, H, W) images and maas' outputs). Then checks with h5py: the kernels are int8
datasets, the scales float32, the zero points int32 scalars; and the model,
run in numpy from the file alone (quantize the input with input_scale and
input_zero_point, integer products, dequantize with kernel_scale, add the
bias, ReLU), gives maas' outputs.

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
    print("h5py_int8_check: h5py (or numpy) is not installed: skipped")
    sys.exit(77)


def check(cond, message):
    if not cond:
        print("h5py_int8_check: FAILED: " + message)
        sys.exit(1)


def main():
    tests, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "int8.h5")
    subprocess.run([tests, "[h5py-int8-sample]", "--out", os.devnull], check=True,
                   env=dict(os.environ, MAAS_H5PY_INT8_DIR=work))
    expect = json.load(open(path + ".expect"))
    f = h5py.File(path, "r")
    layers = json.loads(f.attrs["model_config"])["config"]["layers"]
    # maas' images (C, H, W) as Keras flattens them: channels last.
    c, h, w_ = expect["chw"]
    x = np.asarray(expect["input"], dtype=np.float64).reshape(-1, c, h, w_).transpose(0, 2, 3, 1).reshape(-1, c * h * w_)
    for layer in layers:
        cls, cfg = layer["class_name"], layer["config"]
        if cls in ("InputLayer", "Flatten"):
            continue
        check(cls == "QuantizedDense", "unexpected layer class " + cls)
        g = f["model_weights"][cfg["name"]]
        names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
        w = {n.split("/")[-1].split(":")[0]: g[n] for n in names}
        check(w["kernel"].dtype == np.int8, "kernel of %s is %s" % (cfg["name"], w["kernel"].dtype))
        check(w["kernel_scale"].dtype == np.float32, "kernel_scale dtype")
        check(w["input_scale"].shape == () and w["input_zero_point"].shape == (), "scalar scale and zero point")
        check(w["input_zero_point"].dtype == np.int32, "zero point dtype")
        kernel = np.asarray(w["kernel"], dtype=np.int64)
        check(np.abs(kernel).max() <= 127, "kernel codes within [-127, 127]")
        s_x, z = float(w["input_scale"][()]), int(w["input_zero_point"][()])
        q = np.clip(np.rint(np.float32(x) * np.float32(1 / np.float32(s_x))) + z, 0, 255).astype(np.int64)
        acc = (q - z) @ kernel
        y = acc * (s_x * np.asarray(w["kernel_scale"], dtype=np.float64)) + np.asarray(w["bias"], dtype=np.float64)
        x = np.maximum(y, 0) if cfg["activation"] == "relu" else y
    want = np.asarray(expect["output"])
    err = np.abs(x - want).max()
    check(err <= 1e-4 * (1 + np.abs(want).max()), "numpy's outputs differ from maas' by %g" % err)
    print("h5py_int8_check: ok (%d layers, largest difference %.2g)" % (len(layers), err))


main()
