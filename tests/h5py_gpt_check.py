#!/usr/bin/env python3
"""h5py reads a saved maas GPT and numpy computes its logits from the file alone.

Usage: h5py_gpt_check.py MAAS_TESTS WORKDIR

Runs `MAAS_TESTS [h5py-gpt-sample]` (a hidden Catch2 case in
tests/checkpoint/test_keras_gpt.cpp) to write WORKDIR/gpt.h5 (a 2-layer GPT as
examples/gpt.cpp --save writes it: save_model, with its tokenizer in the root
attribute maas_metadata) and WORKDIR/gpt.h5.expect (JSON: the model's sizes,
a prompt, its token ids and maas' logits for them). Then checks with h5py:
  - the root attributes and the Functional model_config, whose layers are
    the GPT's: Embedding, PositionEmbedding, Add, LayerNormalization,
    MultiHeadAttention, Dense (GELU, linear) and EmbeddingTranspose, with
    layer_names in the config's order;
  - each layer's weights in Keras' layout: MultiHeadAttention's as four
    EinsumDense sublayers, query/key/value kernel (d, heads, key_dim) and bias
    (heads, key_dim), attention_output kernel (heads, value_dim, d) and bias
    (d,); the tied output projection holding no copy of the table;
  - maas_metadata as JSON whose "tokenizer" is a CharTokenizer that encodes
    the prompt to maas' ids;
  - the model run in numpy, from the file's config and weights alone (as
    Keras would run it), gives maas' logits within 1e-4.

Exit status: 0 ok, 1 a check failed, 77 h5py is not installed (ctest: skipped).
"""
import json
import math
import os
import subprocess
import sys

try:
    import h5py
    import numpy as np
except ImportError:
    print("h5py_gpt_check: h5py (or numpy) is not installed: skipped")
    sys.exit(77)


def check(cond, message):
    if not cond:
        print("h5py_gpt_check: FAILED: " + message)
        sys.exit(1)


def text(value):
    """An HDF5 string attribute as str, whether h5py returns bytes or str."""
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def layer_weights(group, name):
    """Layer `name`'s weights as {"query/kernel": array, ...}: its weight_names, less
    the layer's name and ":0", each resolved to a float32 dataset of finite values."""
    check(name in group, "model_weights has no group for layer '%s'" % name)
    out = {}
    for wn in (text(v) for v in group[name].attrs["weight_names"]):
        check(wn.startswith(name + "/") and wn.endswith(":0"), "layer '%s': weight name '%s'" % (name, wn))
        check(wn in group[name], "layer '%s': weight '%s' names no dataset" % (name, wn))
        value = np.asarray(group[name][wn])
        check(value.dtype == np.float32 and np.all(np.isfinite(value)), wn + " holds finite float32")
        out[wn[len(name) + 1:-2]] = value.astype(np.float64)
    return out


def expect_shapes(name, w, shapes):
    got = {k: v.shape for k, v in w.items()}
    check(got == shapes, "layer '%s' holds %s, Keras' layout is %s" % (name, got, shapes))


def layer_norm(x, cfg, w):
    check(cfg["axis"] in (-1, [-1]) and cfg["center"] and cfg["scale"], "LayerNormalization options %s" % cfg)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + cfg["epsilon"]) * w["gamma"] + w["beta"]


def attention(query, value, cfg, w):
    """Keras' MultiHeadAttention (key = value) with its einsum weights; causal as configured."""
    q = np.einsum("btd,dhk->bthk", query, w["query/kernel"]) + w["query/bias"]
    k = np.einsum("btd,dhk->bthk", value, w["key/kernel"]) + w["key/bias"]
    v = np.einsum("btd,dhk->bthk", value, w["value/kernel"]) + w["value/bias"]
    scores = np.einsum("bqhk,bshk->bhqs", q, k) / math.sqrt(cfg["key_dim"])
    if cfg.get("use_causal_mask", False):
        t, s = scores.shape[-2:]
        scores = np.where(np.tril(np.ones((t, s), dtype=bool)), scores, -np.inf)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    probs = scores / scores.sum(-1, keepdims=True)
    o = np.einsum("bhqs,bshv->bqhv", probs, v)
    return np.einsum("bqhv,hvd->bqd", o, w["attention_output/kernel"]) + w["attention_output/bias"]


def gelu(x):
    """Keras' gelu (approximate=False): x * Phi(x), with erf."""
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def check_layout(config, weights, sizes):
    """The layers' classes, options and weight shapes, against the GPT's sizes."""
    d, heads, vocab, block = sizes["embd"], sizes["heads"], sizes["vocab"], sizes["block"]
    key_dim = d // heads
    layers = config["layers"]
    classes = [l["class_name"] for l in layers]
    for cls, count in (("InputLayer", 1), ("Embedding", 1), ("PositionEmbedding", 1), ("EmbeddingTranspose", 1),
                       ("MultiHeadAttention", sizes["layers"]), ("Dense", 2 * sizes["layers"]),
                       ("LayerNormalization", 2 * sizes["layers"] + 1)):
        check(classes.count(cls) == count, "model_config has %d %s layers, expected %d: %s"
              % (classes.count(cls), cls, count, classes))
    names = [text(v) for v in weights.attrs["layer_names"]]
    check(names == [l["config"]["name"] for l in layers[1:]], "layer_names %s against the config's layers" % names)
    embeddings = [l["config"]["name"] for l in layers if l["class_name"] == "Embedding"]
    for layer in layers[1:]:
        cls, cfg = layer["class_name"], layer["config"]
        name = cfg["name"]
        w = layer_weights(weights, name)
        if cls == "Embedding":
            expect_shapes(name, w, {"embeddings": (vocab, d)})
        elif cls == "PositionEmbedding":
            check(cfg["sequence_length"] == block, "PositionEmbedding sequence_length %s" % cfg["sequence_length"])
            expect_shapes(name, w, {"embeddings": (block, d)})
        elif cls == "LayerNormalization":
            expect_shapes(name, w, {"gamma": (d,), "beta": (d,)})
        elif cls == "MultiHeadAttention":
            check(cfg["num_heads"] == heads and cfg["key_dim"] == key_dim and cfg["value_dim"] == key_dim
                  and cfg["use_bias"] and cfg["output_shape"] is None and cfg["use_causal_mask"] is True,
                  "MultiHeadAttention '%s' options %s" % (name, cfg))
            shapes = {p + "/kernel": (d, heads, key_dim) for p in ("query", "key", "value")}
            shapes.update({p + "/bias": (heads, key_dim) for p in ("query", "key", "value")})
            shapes.update({"attention_output/kernel": (heads, key_dim, d), "attention_output/bias": (d,)})
            expect_shapes(name, w, shapes)
        elif cls == "Dense":
            check(cfg["use_bias"] and cfg["activation"] in ("gelu", "linear"), "Dense '%s' options %s" % (name, cfg))
            units_in = d if cfg["activation"] == "gelu" else 4 * d
            expect_shapes(name, w, {"kernel": (units_in, cfg["units"]), "bias": (cfg["units"],)})
        elif cls == "EmbeddingTranspose":
            # Tied: the table is the Embedding's, stored once.
            check(cfg["embedding"] in embeddings, "EmbeddingTranspose '%s' ties to '%s', not to an Embedding %s"
                  % (name, cfg["embedding"], embeddings))
            check(cfg["use_bias"] is False, "EmbeddingTranspose '%s' use_bias" % name)
            expect_shapes(name, w, {})
        elif cls == "Add":
            expect_shapes(name, w, {})
        else:
            check(False, "layer '%s' of unexpected class %s" % (name, cls))


def run(config, weights, tokens):
    """The model's output for tokens [B, T], layer by layer along the config's inbound nodes."""
    outputs = {}
    for layer in config["layers"]:
        cls, cfg = layer["class_name"], layer["config"]
        name = cfg["name"]
        if cls == "InputLayer":
            outputs[name] = tokens
            continue
        check(len(layer["inbound_nodes"]) == 1, "layer '%s' is called %d times" % (name, len(layer["inbound_nodes"])))
        ins = []
        for node in layer["inbound_nodes"][0]:
            check(node[0] in outputs, "layer '%s' reads '%s' before it is computed" % (name, node[0]))
            ins.append(outputs[node[0]])
        w = layer_weights(weights, name)
        if cls == "Embedding":
            y = w["embeddings"][ins[0]]
        elif cls == "PositionEmbedding":
            y = np.broadcast_to(w["embeddings"][:ins[0].shape[-2]], ins[0].shape)
        elif cls == "Add":
            y = sum(ins)
        elif cls == "LayerNormalization":
            y = layer_norm(ins[0], cfg, w)
        elif cls == "MultiHeadAttention":
            check(len(ins) == 2, "MultiHeadAttention '%s' takes query and value" % name)
            y = attention(ins[0], ins[1], cfg, w)
        elif cls == "Dense":
            y = ins[0] @ w["kernel"] + w["bias"]
            y = gelu(y) if cfg["activation"] == "gelu" else y
        elif cls == "EmbeddingTranspose":
            y = ins[0] @ layer_weights(weights, cfg["embedding"])["embeddings"].T
        else:
            check(False, "no numpy version of %s" % cls)
        outputs[name] = y
    out = config["output_layers"]
    check(len(out) == 1, "output_layers %s" % out)
    return outputs[out[0][0]]


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tests, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "gpt.h5")
    for stale in (path, path + ".expect"):
        if os.path.exists(stale):
            os.remove(stale)
    subprocess.run([tests, "[h5py-gpt-sample]"], env=dict(os.environ, MAAS_H5PY_GPT_DIR=work), check=True,
                   stdout=subprocess.DEVNULL)
    check(os.path.exists(path) and os.path.exists(path + ".expect"),
          "%s [h5py-gpt-sample] wrote no %s and %s.expect" % (tests, path, path))
    with open(path + ".expect") as f:
        expect = json.load(f)

    with h5py.File(path, "r") as f:
        check(text(f.attrs["keras_version"]).startswith("2."), "keras_version")
        check(text(f.attrs["backend"]) == "tensorflow", "backend")
        model = json.loads(text(f.attrs["model_config"]))
        check(model["class_name"] == "Functional", "model_config class_name %s" % model["class_name"])
        config = model["config"]
        check(config["layers"][0]["class_name"] == "InputLayer", "an InputLayer first")
        check(config["layers"][0]["config"]["batch_input_shape"] == [None, expect["block"]], "the input shape")
        weights = f["model_weights"]
        check_layout(config, weights, expect)

        check("maas_metadata" in f.attrs, "the root has no maas_metadata attribute")
        metadata = json.loads(text(f.attrs["maas_metadata"]))
        check(isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values()),
              "maas_metadata is not a JSON object of strings")
        check("tokenizer" in metadata, "maas_metadata has no tokenizer: %s" % sorted(metadata))
        tokenizer = json.loads(metadata["tokenizer"])
        check(tokenizer.get("class_name") == "CharTokenizer", "tokenizer class_name %s" % tokenizer.get("class_name"))
        vocabulary = tokenizer["vocabulary"]
        check(len(vocabulary) == expect["vocab"] and all(isinstance(c, str) and len(c) == 1 for c in vocabulary)
              and len(set(vocabulary)) == len(vocabulary), "tokenizer vocabulary %r" % vocabulary)
        ids = [vocabulary.index(c) for c in expect["prompt"]]
        check(ids == expect["tokens"], "the tokenizer encodes %r to %s, maas to %s"
              % (expect["prompt"], ids, expect["tokens"]))

        logits = run(config, weights, np.array([ids]))
        want = np.asarray(expect["logits"], dtype=np.float64)[np.newaxis]
        check(logits.shape == want.shape, "numpy's logits are %s, maas' %s" % (logits.shape, want.shape))
        diff = float(np.max(np.abs(logits - want)))
        check(diff <= 1e-4, "numpy's logits from the file differ from maas' by %g" % diff)
        names = [text(v) for v in weights.attrs["layer_names"]]

    print("h5py_gpt_check: ok: h5py %s read a %d-layer GPT (%d layers in the file, a %d-character tokenizer) from "
          "%s; numpy's logits for %r match maas' within %.1g" % (h5py.__version__, expect["layers"], len(names),
                                                               len(vocabulary), path, expect["prompt"], diff))
    return 0


if __name__ == "__main__":
    sys.exit(main())
