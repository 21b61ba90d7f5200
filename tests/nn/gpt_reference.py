# Writes tests/nn/gpt_reference.hpp and tests/nn/gpt_reference_tied.hpp:
# PyTorch's values for the GPT parity test (tests/nn/test_gpt_parity.cpp), as
# llm.c checks its GPT-2 against PyTorch. Run from the repository root:
#   /usr/bin/python3 tests/nn/gpt_reference.py > tests/nn/gpt_reference.hpp
#   /usr/bin/python3 tests/nn/gpt_reference.py --tied > tests/nn/gpt_reference_tied.hpp
# (torch 1.13; everything in float64, on one thread. torch's sums change
# their last digits with the thread count: a rerun on other threads than the
# one that wrote gpt_reference.hpp, before the count was pinned here, differs
# from it by ~1e-16 relative, and by ~1e-20 absolute in the key biases'
# gradients, which are zero. That file is kept as it was written.)
#
# The model is examples/gpt.cpp's build_gpt with 2 layers, 2 heads,
# embedding 32, block 16 and a vocabulary of 65: token embedding plus learned
# positions; per block LayerNorm (epsilon 1e-3) -> causal multi-head attention
# (separate q, k, v and output projections with biases, scale
# 1/sqrt(head_dim)) -> residual, LayerNorm -> Linear 4C -> exact GELU ->
# Linear C -> residual; a final LayerNorm and an untied Linear to the
# vocabulary, with a bias. With --tied the head is build_gpt's own: the
# final LayerNorm's output times the token embedding's table transposed
# (EmbeddingTranspose, no bias), so that the table's gradient is the sum of
# its two uses. Weights are held in maas' (Keras') layout, so that their
# gradients are too: a kernel is [in, out] (torch's Linear weight
# transposed), and an attention kernel's columns are head after head.
#
# Weights come from a closed form the C++ test computes too: element i (in
# row-major order) of parameter k is offset + amplitude * sin(a * i + b),
# with the four numbers per parameter written in the header's table (the
# tied model's parameters are the untied model's less the last Linear, with
# the same closed forms). Both sides round it to float32; here the rounded
# values are then computed in float64. The batch (B=4, T=16) is a closed form
# of whole numbers: token n of the stream is (17 n + (n * n) % 23 + 3 (n // 5))
# % 65; sample s reads tokens 16 s .. 16 s + 15 and its targets are the next
# ones.
#
# Written: the logits, the mean cross-entropy, every parameter's gradient,
# and the losses of 10 steps of AdamW (lr 1e-3, betas 0.9/0.99, eps 1e-8,
# weight decay 0.1 on the >= 2-D parameters and none on the others, no
# clipping) on the same batch, each loss taken before its step.
# gpt_reference_tied.hpp includes gpt_reference.hpp for the sizes, the batch
# and the Param table's type, and holds its values in namespace `tied`.
import argparse
import math

import torch

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)

VOCAB, BLOCK, LAYERS, HEADS, EMBD = 65, 16, 2, 2, 32
BATCH = 4


def suffix(i):
    """Keras' layer-name suffix of the i-th layer of a kind: "", "_1", "_2", ..."""
    return "" if i == 0 else f"_{i}"


def param_specs(tied):
    """(name, shape, offset, amplitude, a, b) per parameter, in the order of maas' parameters()."""
    c = EMBD
    specs = [("embedding.embeddings", [VOCAB, c], 0.0, 0.5),
             ("position_embedding.embeddings", [BLOCK, c], 0.0, 0.2)]

    def ln(name):
        return [(f"{name}.gamma", [c], 1.0, 0.1), (f"{name}.beta", [c], 0.0, 0.1)]

    def dense(name, n_in, n_out, amplitude):
        return [(f"{name}.kernel", [n_in, n_out], 0.0, amplitude), (f"{name}.bias", [n_out], 0.0, 0.05)]

    for i in range(LAYERS):
        specs += ln(f"layer_normalization{suffix(2 * i)}")
        mha = f"multi_head_attention{suffix(i)}"
        for part, amplitude in (("query", 0.3), ("key", 0.3), ("value", 0.2), ("attention_output", 0.1)):
            specs += [(f"{mha}.{part}_kernel", [c, c], 0.0, amplitude), (f"{mha}.{part}_bias", [c], 0.0, 0.05)]
        specs += ln(f"layer_normalization{suffix(2 * i + 1)}")
        specs += dense(f"dense{suffix(2 * i)}", c, 4 * c, 0.4)
        specs += dense(f"dense{suffix(2 * i + 1)}", 4 * c, c, 0.1)
    specs += ln(f"layer_normalization{suffix(2 * LAYERS)}")
    if not tied:
        specs += dense(f"dense{suffix(2 * LAYERS)}", c, VOCAB, 0.2)
    # The frequency and phase of parameter k.
    return [(name, shape, offset, amplitude, 0.37 + 0.113 * k, 0.1 + 0.29 * k)
            for k, (name, shape, offset, amplitude) in enumerate(specs)]


def closed_form(shape, offset, amplitude, a, b):
    n = math.prod(shape)
    values = [offset + amplitude * math.sin(a * i + b) for i in range(n)]
    return torch.tensor(values, dtype=torch.float32).to(torch.float64).reshape(shape)


def batch():
    n = BATCH * BLOCK + 1
    stream = [(17 * i + (i * i) % 23 + 3 * (i // 5)) % VOCAB for i in range(n)]
    x = torch.tensor([stream[s * BLOCK:(s + 1) * BLOCK] for s in range(BATCH)])
    y = torch.tensor([stream[s * BLOCK + 1:(s + 1) * BLOCK + 1] for s in range(BATCH)])
    return x, y


def forward(p, x, tied):
    """Logits [B, T, V]; p maps maas' names to parameters."""
    b, t = x.shape
    hd = EMBD // HEADS

    def ln(name, h):
        return torch.nn.functional.layer_norm(h, [EMBD], p[f"{name}.gamma"], p[f"{name}.beta"], 1e-3)

    def dense(name, h, kernel="kernel", bias="bias"):
        return h @ p[f"{name}.{kernel}"] + p[f"{name}.{bias}"]

    h = p["embedding.embeddings"][x] + p["position_embedding.embeddings"][:t]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    for i in range(LAYERS):
        a = ln(f"layer_normalization{suffix(2 * i)}", h)
        mha = f"multi_head_attention{suffix(i)}"
        q, k, v = (dense(mha, a, f"{part}_kernel", f"{part}_bias").reshape(b, t, HEADS, hd).transpose(1, 2)
                   for part in ("query", "key", "value"))
        s = (q @ k.transpose(-1, -2) / math.sqrt(hd)).masked_fill(~causal, float("-inf"))
        o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(b, t, EMBD)
        h = h + dense(mha, o, "attention_output_kernel", "attention_output_bias")
        m = ln(f"layer_normalization{suffix(2 * i + 1)}", h)
        m = torch.nn.functional.gelu(dense(f"dense{suffix(2 * i)}", m))
        h = h + dense(f"dense{suffix(2 * i + 1)}", m)
    h = ln(f"layer_normalization{suffix(2 * LAYERS)}", h)
    return h @ p["embedding.embeddings"].t() if tied else dense(f"dense{suffix(2 * LAYERS)}", h)


def loss_of(logits, y):
    return torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))


def floats(values, per_line=6):
    """The values as a C++ initializer's body, per_line to a line."""
    text = [f"{v:.9g}" for v in values]
    return "\n" + ",\n".join("    " + ", ".join(text[i:i + per_line]) for i in range(0, len(text), per_line)) + "\n"


def values(tied):
    """The header's lines for the gradients, the Param table, the logits and the losses."""
    specs = param_specs(tied)
    p = {name: closed_form(shape, *form).requires_grad_() for name, shape, *form in specs}
    x, y = batch()
    logits = forward(p, x, tied)
    loss = loss_of(logits, y)
    loss.backward()
    grads = {name: p[name].grad.clone() for name in p}

    decay = [p[name] for name, shape, *_ in specs if len(shape) >= 2]
    no_decay = [p[name] for name, shape, *_ in specs if len(shape) < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99), eps=1e-8)
    losses = []
    for _ in range(10):
        opt.zero_grad()
        step_loss = loss_of(forward(p, x, tied), y)
        losses.append(step_loss.item())
        step_loss.backward()
        opt.step()

    out = []
    for k, (name, shape, *_rest) in enumerate(specs):
        out.append(f"// d loss / d {name} {shape}")
        out.append(f"inline constexpr float kGrad{k}[] = {{{floats(grads[name].reshape(-1).tolist())}}};")
    if not tied:
        out += ["", "// Parameter k, element i (row-major): float(offset + amplitude * sin(a * i + b)).",
                "struct Param {", "  const char* name;", "  int64_t rows, cols;  // cols 0: a vector of rows",
                "  double offset, amplitude, a, b;", "  const float* grad;", "};"]
    out += ["", "inline constexpr Param kGptParams[] = {"]
    for k, (name, shape, offset, amplitude, a, b) in enumerate(specs):
        cols = shape[1] if len(shape) == 2 else 0
        out.append(f"    {{\"{name}\", {shape[0]}, {cols}, {offset!r}, {amplitude!r}, {a!r}, {b!r}, kGrad{k}}},")
    out += ["};", "",
            f"// The logits [{BATCH}, {BLOCK}, {VOCAB}].",
            f"inline constexpr float kLogits[] = {{{floats(logits.reshape(-1).tolist())}}};", "",
            "// The mean cross-entropy of the logits.",
            f"constexpr double kLoss = {loss.item():.17g};", "",
            "// The loss before each of 10 AdamW steps on the batch (kLoss first).",
            "inline constexpr double kAdamWLosses[] = {",
            "    " + ", ".join(f"{v:.17g}" for v in losses[:5]) + ",",
            "    " + ", ".join(f"{v:.17g}" for v in losses[5:]) + "};"]
    return out


def main():
    parser = argparse.ArgumentParser(description="PyTorch's values for tests/nn/test_gpt_parity.cpp")
    parser.add_argument("--tied", action="store_true",
                        help="the output projection tied to the token embedding (gpt_reference_tied.hpp)")
    tied = parser.parse_args().tied
    version = torch.__version__.split("a")[0]
    if tied:
        out = ["// PyTorch's values for the tied-head GPT of tests/nn/test_gpt_parity.cpp:",
               "// the output of",
               "//   /usr/bin/python3 tests/nn/gpt_reference.py --tied > tests/nn/gpt_reference_tied.hpp",
               "// (torch " + version + ", float64, one thread), unchanged. The model is",
               "// gpt_reference.hpp's with its logits taken from the token embedding's",
               "// table transposed (examples/gpt.cpp's EmbeddingTranspose) instead of a",
               "// Linear; the closed-form weights and the batch are those of",
               "// gpt_reference.hpp. kGptParams gives each parameter's closed form in the",
               "// order of maas' Model::named_parameters().",
               "#pragma once", "", "#include \"nn/gpt_reference.hpp\"", "",
               "namespace maas::test::gpt_reference::tied {", ""]
        out += values(tied)
        out += ["", "}  // namespace maas::test::gpt_reference::tied"]
    else:
        out = ["// PyTorch's values for tests/nn/test_gpt_parity.cpp: the output of",
               "//   /usr/bin/python3 tests/nn/gpt_reference.py > tests/nn/gpt_reference.hpp",
               "// (torch " + version + ", float64), unchanged. The model, its closed-form weights",
               "// and batch are described there; kGptParams gives each parameter's closed",
               "// form in the order of maas' Model::named_parameters().",
               "#pragma once", "", "#include <cstdint>", "", "namespace maas::test::gpt_reference {", "",
               f"constexpr int64_t kVocab = {VOCAB}, kBlock = {BLOCK}, kLayers = {LAYERS}, kHeads = {HEADS}, "
               f"kEmbd = {EMBD}, kBatch = {BATCH};", "",
               "// Token n of the batch's stream; sample s reads tokens 16 s .. 16 s + 15,",
               "// its targets are tokens 16 s + 1 .. 16 s + 16.",
               "constexpr int64_t token(int64_t n) { return (17 * n + (n * n) % 23 + 3 * (n / 5)) % kVocab; }", ""]
        out += values(tied)
        out += ["", "}  // namespace maas::test::gpt_reference"]
    print("\n".join(out))


if __name__ == "__main__":
    main()
