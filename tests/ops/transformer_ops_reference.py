# Prints the PyTorch values pasted into tests/ops/test_transformer_ops.cpp.
# Run: /usr/bin/python3 tests/ops/transformer_ops_reference.py (torch 1.13, fp64).
# Inputs come from closed forms the C++ test computes too: fill(shape, a, b)
# is sin(a * i + b) * 2 for the i-th element in row-major order.
import math
import torch

torch.set_default_dtype(torch.float64)


def fill(shape, a, b):
    n = math.prod(shape)
    return torch.tensor([math.sin(a * i + b) * 2 for i in range(n)]).reshape(shape)


def show(name, t):
    vals = ", ".join(f"{v:.9g}" for v in t.detach().reshape(-1).tolist())
    print(f"// {name} {list(t.shape)}\nconst std::vector<float> {name} = {{{vals}}};")


# layer_norm over C = 5, eps 1e-5; loss = sum(y * r).
x = fill([2, 3, 5], 0.37, 0.1).requires_grad_()
g = fill([5], 0.9, 0.3).requires_grad_()
b = fill([5], 0.5, 1.1).requires_grad_()
y = torch.nn.functional.layer_norm(x, [5], g, b, 1e-5)
(y * fill([2, 3, 5], 0.23, 0.7)).sum().backward()
show("kLnOut", y); show("kLnDx", x.grad); show("kLnDg", g.grad); show("kLnDb", b.grad)

# gelu, both forms, at 9 points, and d/dx.
for name, approx in (("Erf", "none"), ("Tanh", "tanh")):
    x = torch.tensor([-4.0, -2.5, -1.0, -0.3, 0.0, 0.2, 1.0, 1.7, 5.0], requires_grad=True)
    y = torch.nn.functional.gelu(x, approximate=approx)
    y.sum().backward()
    show(f"kGelu{name}", y); show(f"kGelu{name}Grad", x.grad)


# attention, [B,H,T,D] = [2,2,4,3], S = 5, Dv = 2: causal (bottom-right:
# j <= i + S - T) and a key-padding mask [B,1,S]; loss = sum(o * r).
def attention(q, k, v, causal, mask):
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    T, S = q.shape[-2], k.shape[-2]
    allowed = torch.ones(T, S, dtype=torch.bool)
    if causal:
        allowed = torch.tensor([[j <= i + S - T for j in range(S)] for i in range(T)])
    allowed = allowed & (mask != 0) if mask is not None else allowed
    s = s.masked_fill(~allowed, float("-inf"))
    return torch.softmax(s, -1) @ v


mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], dtype=torch.float64).reshape(2, 1, 1, 5)
for name, causal, m in (("Causal", True, None), ("Masked", False, mask)):
    q = fill([2, 2, 4, 3], 0.31, 0.2).requires_grad_()
    k = fill([2, 2, 5, 3], 0.17, 0.9).requires_grad_()
    v = fill([2, 2, 5, 2], 0.41, 0.4).requires_grad_()
    o = attention(q, k, v, causal, m)
    (o * fill([2, 2, 4, 2], 0.29, 0.5)).sum().backward()
    show(f"kAttn{name}Out", o); show(f"kAttn{name}Dq", q.grad); show(f"kAttn{name}Dk", k.grad)
    show(f"kAttn{name}Dv", v.grad)

# cross_entropy over [B,T,V] = [2,3,4] with ignore_index -100 (label at [0,1]
# and [1,2] ignored), mean; and its gradient.
z = fill([2, 3, 4], 0.53, 0.6).requires_grad_()
labels = torch.tensor([[3, -100, 0], [1, 2, -100]])
loss = torch.nn.functional.cross_entropy(z.reshape(6, 4), labels.reshape(6), ignore_index=-100)
loss.backward()
show("kCeLoss", loss.reshape(1)); show("kCeGrad", z.grad)
