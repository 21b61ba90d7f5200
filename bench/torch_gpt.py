#!/usr/bin/python3
"""torch_gpt.py: the PyTorch reference for examples/gpt, the character-level GPT on tiny-shakespeare.

    /usr/bin/python3 bench/torch_gpt.py                       # nanoGPT's shakespeare_char small-CPU recipe
    /usr/bin/python3 bench/torch_gpt.py --iters 50 --eval-every 25 --eval-windows 96 --threads 2 --json

The same model, recipe, data handling and evaluation as examples/gpt.cpp, so that the two are compared on
speed, memory and final loss (bench/gpt_compare.sh runs both):
- model: token embedding + learned position embedding; per block, pre-LayerNorm (eps 1e-3, Keras' default,
  which maas uses) -> causal multi-head attention (separate query/key/value/output projections with bias,
  scale 1/sqrt(head_dim)) -> residual, LayerNorm -> Linear 4C -> GELU (erf) -> Linear C -> residual; a final
  LayerNorm and logits from the token embedding's table (tied, no bias), as maas' EmbeddingTranspose. The
  defaults (4 layers, 4 heads, embedding 128, block 64, 65 characters) have 809,856 parameters, as maas'.
- recipe: batch 12, 2,000 iterations, dropout 0; AdamW lr 1e-3, betas (0.9, 0.99), eps 1e-8, weight decay 0.1
  on the >= 2-D weights (the Linear weights and both embeddings), none on biases and LayerNorm; nanoGPT's
  get_lr: 100 warm-up steps, then a cosine down to 1e-4 at the last iteration; gradient clipping at 1.0.
- data: the text's sorted distinct characters are the vocabulary; the first int(0.9 n) tokens train, the rest
  validate; a training batch is `batch` windows of block + 1 tokens at offsets drawn uniformly (with
  replacement) from [0, n - block), seeded by --seed.
- evaluation: the mean cross-entropy over --eval-windows windows of the validation text (default 200 * batch),
  window i at offset i * n_windows // count with n_windows = len(val) - block, in batches of 4 * batch; every
  --eval-every iterations and after the last.
- timing: train_tok_s counts the training steps only (batch sampling, forward, backward, clipping, the AdamW
  step); gen_tok_s is 200 tokens sampled at batch 1 (plain multinomial, temperature 1) after the prompt "\\n".

Initialisation is nanoGPT's (normal(0, 0.02) for the Linear and Embedding weights, zero biases, the attention
output and second MLP projections normal(0, 0.02 / sqrt(2 * layers)); LayerNorm gain 1, offset 0). maas'
is Keras' (Glorot uniform kernels, uniform embeddings), so the two runs are compared on speed and final loss,
not bit for bit.

Sampling uses a key/value cache of its own: each layer keeps preallocated [1, heads, block, head_dim] keys
and values; the prompt is one forward pass (prefill), then each token one pass of length 1. The learned
positions stop at the block, so when the cache is full it is rebuilt by a prefill of the last block // 2
tokens (a sampled token thus sees between block // 2 and block tokens of context).

--json prints, per evaluation, {"iter", "train_loss", "val_loss", "lr", "train_tok_s"} (lr: the rate of the
next step, as maas reports it), then {"val_loss", "train_tok_s", "gen_tok_s", "params", "peak_rss_mb"}
(peak_rss_mb: ru_maxrss of this process). Linear layers run on the system BLAS that PyTorch loads
(libblas.so.3): which one it is decides PyTorch's speed; bench/gpt_compare.sh prints it.
"""
import argparse
import gzip
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('%s is not a positive whole number' % text)
    return value


def parse_args():
    p = argparse.ArgumentParser(description='PyTorch reference for examples/gpt (see the file header).')
    p.add_argument('--data', default=os.path.join(ROOT, 'data', 'tinyshakespeare', 'input.txt.gz'),
                   help='UTF-8 text, plain or gzipped')
    p.add_argument('--iters', type=positive, default=2000)
    p.add_argument('--threads', type=int, default=0, help='intra-op threads; 0: all cores')
    p.add_argument('--batch', type=positive, default=12)
    p.add_argument('--eval-every', type=positive, default=250)
    p.add_argument('--eval-windows', type=positive, default=None, help='default: 200 * batch')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--layers', type=positive, default=4)
    p.add_argument('--heads', type=positive, default=4)
    p.add_argument('--embd', type=positive, default=128)
    p.add_argument('--block', type=positive, default=64)
    p.add_argument('--json', action='store_true')
    a = p.parse_args()
    if a.threads < 0:
        p.error('--threads must be 0 (all cores) or more')
    if a.embd % a.heads:
        p.error('--embd %d is not a multiple of --heads %d (each head takes embd / heads features)'
                % (a.embd, a.heads))
    if a.eval_windows is None:
        a.eval_windows = 200 * a.batch
    return a


def read_text(path):
    with open(path, 'rb') as f:
        raw = f.read()
    if raw[:2] == b'\x1f\x8b':
        raw = gzip.decompress(raw)
    if not raw:
        sys.exit('torch_gpt.py: %s is empty' % path)
    return raw.decode('utf-8')


class KVCache:
    """Per-layer keys and values of the positions seen so far (batch 1)."""

    def __init__(self, layers, heads, block, head_dim):
        self.k = torch.zeros(layers, 1, heads, block, head_dim)
        self.v = torch.zeros(layers, 1, heads, block, head_dim)
        self.length = 0


class Attention(nn.Module):
    def __init__(self, embd, heads, block):
        super().__init__()
        self.heads, self.head_dim = heads, embd // heads
        self.query, self.key, self.value, self.out = (nn.Linear(embd, embd) for _ in range(4))
        self.register_buffer('causal', torch.ones(block, block, dtype=torch.bool).tril(), persistent=False)

    def forward(self, x, cache=None, layer=0):
        b, t, c = x.shape
        q, k, v = (f(x).view(b, t, self.heads, self.head_dim).transpose(1, 2)
                   for f in (self.query, self.key, self.value))
        if cache is not None:
            start, end = cache.length, cache.length + t
            cache.k[layer, :, :, start:end] = k
            cache.v[layer, :, :, start:end] = v
            k, v = cache.k[layer, :, :, :end], cache.v[layer, :, :, :end]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
        if t > 1:  # a single new query sees every cached key
            n = k.size(2)
            att = att.masked_fill(~self.causal[n - t:n, :n], float('-inf'))
        y = F.softmax(att, dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    def __init__(self, embd, heads, block):
        super().__init__()
        self.ln1 = nn.LayerNorm(embd, eps=1e-3)
        self.attn = Attention(embd, heads, block)
        self.ln2 = nn.LayerNorm(embd, eps=1e-3)
        self.fc = nn.Linear(embd, 4 * embd)
        self.proj = nn.Linear(4 * embd, embd)

    def forward(self, x, cache=None, layer=0):
        x = x + self.attn(self.ln1(x), cache, layer)
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab, block, layers, heads, embd):
        super().__init__()
        self.block = block
        self.tokens = nn.Embedding(vocab, embd)
        self.positions = nn.Embedding(block, embd)
        self.blocks = nn.ModuleList(Block(embd, heads, block) for _ in range(layers))
        self.ln_f = nn.LayerNorm(embd, eps=1e-3)
        self.head = nn.Linear(embd, vocab, bias=False)
        self.head.weight = self.tokens.weight  # tied: one table, as maas' EmbeddingTranspose
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for b in self.blocks:
            for w in (b.attn.out.weight, b.proj.weight):
                nn.init.normal_(w, 0.0, 0.02 / math.sqrt(2 * layers))

    def forward(self, idx, cache=None):
        start = cache.length if cache is not None else 0
        pos = torch.arange(start, start + idx.size(1))
        x = self.tokens(idx) + self.positions(pos)
        for i, b in enumerate(self.blocks):
            x = b(x, cache, i)
        if cache is not None:
            cache.length += idx.size(1)
        return self.head(self.ln_f(x))


def get_lr(it, lr, min_lr, warmup, decay):
    """nanoGPT's get_lr, as maas' WarmupCosineLR."""
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    if it >= decay:
        return min_lr
    coeff = 0.5 * (1.0 + math.cos(math.pi * (it - warmup) / (decay - warmup)))
    return min_lr + coeff * (lr - min_lr)


def evaluate(model, windows, count, batch):
    """The mean loss over `count` fixed windows, their offsets spread evenly over the text."""
    model.eval()
    n = min(count, windows.size(0))
    total = 0.0
    with torch.no_grad():
        for start in range(0, n, batch):
            w = windows[torch.tensor([i * windows.size(0) // n for i in range(start, min(n, start + batch))])]
            logits = model(w[:, :-1])
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), w[:, 1:].reshape(-1))
            total += loss.item() * w.size(0)
    model.train()
    return total / n


@torch.no_grad()
def decode(model, ids, heads, pick):
    """Yields the tokens after `ids` one at a time, each appended to `ids` first: pick(logits [V]) chooses it.

    A key/value cache holds the positions seen; the next token's forward pass runs only when it is asked for.
    """
    block = model.block
    cache = KVCache(len(model.blocks), heads, block, model.tokens.embedding_dim // heads)
    logits = model(torch.tensor([ids[-block:]]), cache)
    while True:
        ids.append(pick(logits[0, -1]))
        yield ids[-1]
        if cache.length == block:  # full: positions end at the block, so start again from its second half
            cache.length = 0
            logits = model(torch.tensor([ids[-(block // 2):]]), cache)
        else:
            logits = model(torch.tensor([ids[-1:]]), cache)


def generate(model, ids, n, heads, gen):
    """`n` tokens after `ids`, sampled one at a time with a key/value cache."""
    pick = lambda logits: int(torch.multinomial(F.softmax(logits, dim=-1), 1, generator=gen))
    for _ in zip(range(n), decode(model, ids, heads, pick)):
        pass
    return ids


def main():
    a = parse_args()
    torch.set_num_threads(a.threads if a.threads > 0 else os.cpu_count())
    text = read_text(a.data)
    chars = sorted(set(text))
    index = {ch: i for i, ch in enumerate(chars)}
    data = torch.tensor([index[ch] for ch in text], dtype=torch.long)
    n_train = int(0.9 * len(data))
    train, val = data[:n_train], data[n_train:]
    for name, part in (('training', train), ('validation', val)):
        if len(part) <= a.block:
            sys.exit('torch_gpt.py: the %s text has %d tokens, not more than --block %d'
                     % (name, len(part), a.block))
    # Window i is part[i : i + block + 1]: its first block tokens are the input, its last block the targets.
    train_windows = train.unfold(0, a.block + 1, 1)
    val_windows = val.unfold(0, a.block + 1, 1)

    torch.manual_seed(a.seed)
    model = GPT(len(chars), a.block, a.layers, a.heads, a.embd)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    base_lr, min_lr, warmup = 1e-3, 1e-4, min(100, a.iters)
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 0.1}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=get_lr(0, base_lr, min_lr, warmup, a.iters), betas=(0.9, 0.99), eps=1e-8)
    if not a.json:
        print(model)
        print('%d parameters' % params)
    gen = torch.Generator().manual_seed(a.seed)
    train_seconds, val_loss = 0.0, 0.0
    for it in range(1, a.iters + 1):
        t0 = time.perf_counter()
        w = train_windows[torch.randint(train_windows.size(0), (a.batch,), generator=gen)]
        x, y = w[:, :-1], w[:, 1:]
        opt.zero_grad(set_to_none=True)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        l = loss.item()
        if not math.isfinite(l):
            sys.exit('torch_gpt.py: the loss is %g at iteration %d' % (l, it))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        lr = get_lr(it, base_lr, min_lr, warmup, a.iters)
        for g in opt.param_groups:
            g['lr'] = lr
        train_seconds += time.perf_counter() - t0
        if it % a.eval_every != 0 and it != a.iters:
            continue
        val_loss = evaluate(model, val_windows, a.eval_windows, 4 * a.batch)
        tok_s = it * a.batch * a.block / train_seconds
        if a.json:
            print('{"iter": %d, "train_loss": %.4f, "val_loss": %.4f, "lr": %.6g, "train_tok_s": %.0f}'
                  % (it, l, val_loss, lr, tok_s))
        else:
            print('iter %d: train loss %.4f, val loss %.4f, %.0f tokens/s' % (it, l, val_loss, tok_s))
        sys.stdout.flush()

    n_gen = 200
    model.eval()
    sampler = torch.Generator().manual_seed(a.seed + 1)
    g0 = time.perf_counter()
    ids = generate(model, [index['\n']] if '\n' in index else [0], n_gen, a.heads, sampler)
    gen_tok_s = n_gen / (time.perf_counter() - g0)
    train_tok_s = a.iters * a.batch * a.block / train_seconds
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if a.json:
        print('{"val_loss": %.4f, "train_tok_s": %.0f, "gen_tok_s": %.1f, "params": %d, "peak_rss_mb": %.1f}'
              % (val_loss, train_tok_s, gen_tok_s, params, rss_mb))
    else:
        print('val loss %.4f; training %.0f tokens/s; sampling %.1f tokens/s; %d parameters; peak RSS %.1f MB'
              % (val_loss, train_tok_s, gen_tok_s, params, rss_mb))
        print(''.join(chars[i] for i in ids))


if __name__ == '__main__':
    main()
