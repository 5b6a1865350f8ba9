"""The GPT-2 architecture in one readable file.

Pre-LayerNorm transformer blocks (causal self-attention + GELU MLP), learned position embeddings,
input/output weight tying, optional biases. Attention goes through
`torch.nn.functional.scaled_dot_product_attention`, which picks flash / memory-efficient kernels on
GPU and a fused kernel on CPU. The vocabulary is padded to a multiple of 64 (50257 -> 50304) because
matmuls with a round inner size run markedly faster; the padded logits are never targets, so they
only learn to be unlikely.

Shapes: B = batch, T = sequence length, C = n_embd, nh = n_head, hs = C // nh, V = padded vocab.

GPT-2 weights load from a local Hugging Face folder (config.json + model.safetensors or
pytorch_model.bin, or either sharded: `*.index.json` + shards) or a bare weights file; see
`load_hf_gpt2`. A `.bin` is read with `torch.load(weights_only=True)` (`growgpt.torchload`): tensors,
never code.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from growgpt.errors import UserError
from growgpt.torchload import load_error_reason, load_weights_only

# torch.nn.LayerNorm's default, which the blocks use: a GPT-2 config.json read or written must say it.
LAYER_NORM_EPS = 1e-5


def padded_vocab_size(vocab_size: int, multiple: int = 64) -> int:
    return ((vocab_size + multiple - 1) // multiple) * multiple


@dataclass
class GPTConfig:
    block_size: int = 1024
    vocab_size: int = 50304  # already padded
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    bias: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # each (B, T, C)
        hs = C // self.n_head
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        y = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # GPT-2 used the tanh approximation of GELU; keep it so its weights give its outputs.
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """The GPT body: token and position embeddings, the blocks, the final LayerNorm. Its own class
    rather than nanoGPT's nn.ModuleDict so every part has a type; the parameter names
    (transformer.wte.weight, transformer.h.0.attn.c_attn.weight, ...) and their order are the same."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.transformer = Transformer(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # weight tying (one V x C matrix)
        self.apply(self._init_weights)
        # GPT-2 scales the residual projections by 1/sqrt(2 * n_layer): each block adds two of them.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameter count; position embeddings excluded by default (as is usual for GPT-2 counts).
        The token embedding is shared with lm_head, so it counts once, as output weights."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx, targets: (B, T) token ids. Returns (logits, loss): logits (B, T, V) with targets,
        (B, 1, V) for the last position only without (generation), loss a scalar or None."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of length {T} exceeds block_size {self.config.block_size}")
        pos = torch.arange(T, dtype=torch.long, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)
        if targets is None:
            return self.lm_head(x[:, [-1], :]), None
        logits = self.lm_head(x)  # (B, T, V)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def crop_block_size(self, block_size: int) -> None:
        """Shorten the context (e.g. GPT-2's 1024 to a smaller block_size) by cutting wpe."""
        assert block_size <= self.config.block_size
        self.config.block_size = block_size
        self.transformer.wpe.weight = nn.Parameter(self.transformer.wpe.weight[:block_size])

    def configure_optimizer(self, weight_decay: float, learning_rate: float, betas: tuple[float, float],
                            device_type: str) -> torch.optim.AdamW:
        """AdamW with weight decay on matrices only (not on biases, LayerNorm gains or 1-D params)."""
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        # The fused CUDA kernel updates all parameters in one launch; CPU keeps the default path.
        extra = {"fused": True} if device_type == "cuda" else {}
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, **extra)

    def flops_per_token(self) -> float:
        """Training FLOPs per token (forward + backward), as in the PaLM paper's appendix B:
        6 per parameter plus the attention score and value matmuls."""
        cfg = self.config
        n = self.num_params()
        return 6 * n + 12 * cfg.n_layer * cfg.n_embd * cfg.block_size

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, vocab_size: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Extend idx (B, T) by max_new_tokens sampled tokens. Logits of padding ids (>= vocab_size)
        are masked so they are never sampled."""
        for _ in range(max_new_tokens):
            context = idx[:, -self.config.block_size:]
            logits, _ = self(context)
            logits = logits[:, -1, :].float()
            if vocab_size is not None:
                logits[:, vocab_size:] = -float("inf")
            if temperature <= 0:  # greedy
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None and top_k > 0:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("inf")
                probs = F.softmax(logits, dim=-1)
                next_id = torch.multinomial(probs, num_samples=1, generator=generator)
            idx = torch.cat((idx, next_id), dim=1)
        return idx


# --- GPT-2 weights from a local Hugging Face checkpoint -------------------------------------------

# Hugging Face's GPT-2 stores these as Conv1D weights, i.e. (in, out): the transpose of nn.Linear's (out, in).
CONV1D_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


# The "format" metadata of growgpt's own model.safetensors (checkpoint.export_safetensors): not GPT-2's layout.
GROWGPT_WEIGHTS_FORMAT = "growgpt-weights"

# What a Hugging Face folder may hold, in the order transformers itself prefers them.
HF_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                   "pytorch_model.bin.index.json")

# config.json settings under which GPT-2's weights compute something growgpt's blocks do not:
# (key, value allowed when absent or equal to one of these).
_HF_CONFIG_FIXED = (
    ("activation_function", ("gelu_new", "gelu_pytorch_tanh")),  # GELU, tanh approximation
    ("layer_norm_epsilon", (LAYER_NORM_EPS,)),
    ("scale_attn_weights", (True,)),
    ("scale_attn_by_inverse_layer_idx", (False,)),
    ("add_cross_attention", (False,)),
)


def _read_json(path: Path, label: str = "init_from", what: str = "a Hugging Face config") -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise UserError(f"{label}: {path} is not a readable JSON file ({type(e).__name__})") from None
    if not isinstance(value, dict):
        raise UserError(f"{label}: {path} is not {what} (a JSON object)")
    return value


def hf_weights_file(folder: Path) -> Path | None:
    """The weights file of a Hugging Face folder (single file or shard index), or None."""
    for name in HF_WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def _read_tensor_file(weights: Path, label: str) -> dict[str, torch.Tensor]:
    """One .safetensors or PyTorch .bin file as {name: tensor}. A .bin goes through
    torch.load(weights_only=True): tensors and plain data only, never code."""
    try:
        if weights.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(weights), framework="pt") as f:
                if (f.metadata() or {}).get("format") == GROWGPT_WEIGHTS_FORMAT:
                    raise UserError(f"{label}: {weights} is a growgpt weights file (growgpt's own layout), not "
                                    "Hugging Face GPT-2 weights: sample it with --checkpoint, or convert it with "
                                    "growgpt export")
                state = {k: f.get_tensor(k) for k in f.keys()}
        else:
            state = load_weights_only(weights)
    except UserError:
        raise
    except Exception as e:  # corrupt or foreign file
        raise UserError(f"{label}: cannot read GPT-2 weights {weights}: {load_error_reason(e)}") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise UserError(f"{label}: {weights} does not hold named tensors: not GPT-2 weights")
    return state


def _read_sharded(index: Path, label: str) -> dict[str, torch.Tensor]:
    """The tensors of a sharded checkpoint: `*.index.json` ({"weight_map": {tensor: shard file}})
    and its shards beside it. Every shard must exist and hold every tensor the index puts in it."""
    weight_map = _read_json(index, label, "a shard index").get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
        raise UserError(f"{label}: {index} is not a shard index (no 'weight_map' of tensor names to shard files)")
    state: dict[str, torch.Tensor] = {}
    for name in dict.fromkeys(weight_map.values()):  # each shard once, in index order
        if not name or name != Path(name).name or name in (".", ".."):
            raise UserError(f"{label}: {index} names shard {name!r}, which is not a file name in its folder")
        shard = index.parent / name
        if not shard.is_file():
            raise UserError(f"{label}: shard {shard} listed in {index} is missing")
        tensors = _read_tensor_file(shard, label)
        for key, where in weight_map.items():
            if where == name and key not in tensors:
                raise UserError(f"{label}: {index} puts tensor {key} in {shard}, which does not hold it")
        state.update(tensors)
    return state


def _read_hf_state(path: Path, label: str = "init_from") -> tuple[dict[str, torch.Tensor], dict]:
    """Return (state dict, HF config dict) from a folder, a .safetensors / .bin file or a shard index."""
    if not path.exists():
        raise UserError(f"{label}: GPT-2 weights not found: {path}")
    hf_config: dict = {}
    if path.is_dir():
        config_file = path / "config.json"
        if config_file.is_file():
            hf_config = _read_json(config_file, label)
        weights = hf_weights_file(path)
        if weights is None:
            raise UserError(f"{label}: {path} holds neither model.safetensors nor pytorch_model.bin "
                            "(nor their sharded .index.json)")
    else:
        weights = path
        if (path.parent / "config.json").is_file():
            hf_config = _read_json(path.parent / "config.json", label)
    if weights.name.endswith(".index.json"):
        state = _read_sharded(weights, label)
    else:
        state = _read_tensor_file(weights, label)
    return state, hf_config


def _check_hf_config(hf_config: dict, path: Path, shape: dict[str, int], label: str) -> None:
    """config.json must agree with the tensors, and ask for nothing growgpt's GPT does not compute."""
    where = f"config.json of {path}"
    model_type = hf_config.get("model_type", "gpt2")
    if model_type != "gpt2":
        raise UserError(f"{label}: {where} describes a {model_type!r} model, not GPT-2")
    for key, actual in shape.items():
        if key in hf_config and hf_config[key] != actual:
            raise UserError(f"{label}: {where} says {key} = {hf_config[key]!r}, its weights hold {actual}")
    for key, allowed in _HF_CONFIG_FIXED:
        if key in hf_config and hf_config[key] not in allowed:
            raise UserError(f"{label}: {where} sets {key} = {hf_config[key]!r}, which growgpt's GPT-2 does "
                            f"not implement (it computes {allowed[0]!r})")
    n_inner = hf_config.get("n_inner")
    if n_inner is not None and n_inner != 4 * shape["n_embd"]:
        raise UserError(f"{label}: {where} sets n_inner = {n_inner!r}; growgpt's MLP is 4 * n_embd wide")


def load_hf_gpt2(path: str | Path, dropout: float = 0.0, label: str = "init_from") -> tuple[GPT, int]:
    """(GPT, vocabulary size before padding) from local Hugging Face GPT-2 weights: a folder
    (config.json + model.safetensors, pytorch_model.bin, or either sharded with its .index.json),
    or one such file. The shape comes from the tensors, checked against config.json; `label` starts
    every error message (the setting that named the path)."""
    path = Path(path)
    state, hf_config = _read_hf_state(path, label)
    # Keys may carry a "transformer." prefix (GPT2LMHeadModel) or not (GPT2Model).
    state = {k.removeprefix("transformer."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}
    for key in ("wte.weight", "wpe.weight"):
        if key not in state or state[key].dim() != 2:
            raise UserError(f"{label}: {path} does not look like GPT-2 weights (no 2-D {key})")
    vocab, n_embd = state["wte.weight"].shape
    layers = {int(m.group(1)) for k in state if (m := re.match(r"h\.(\d+)\.", k))}
    if not layers:
        raise UserError(f"{label}: {path} does not look like GPT-2 weights (no transformer blocks h.N.*)")
    n_layer = 1 + max(layers)
    block_size = state["wpe.weight"].shape[0]
    _check_hf_config(hf_config, path, {"n_layer": n_layer, "n_embd": n_embd, "n_positions": block_size,
                                       "vocab_size": vocab}, label)
    n_head = hf_config.get("n_head", n_embd // 64)  # GPT-2 sizes all use 64-wide heads
    if type(n_head) is not int or n_head <= 0 or n_embd % n_head:
        raise UserError(f"{label}: n_head = {n_head!r} (config.json of {path}) does not divide the width {n_embd}")
    head = state.get("lm_head.weight")
    if head is not None and not torch.equal(head, state["wte.weight"]):
        raise UserError(f"{label}: {path} has an output layer (lm_head.weight) apart from its token embedding; "
                        "growgpt's GPT-2 ties the two")
    if head is None and hf_config.get("tie_word_embeddings") is False:
        raise UserError(f"{label}: config.json of {path} unties the output layer but the weights hold no "
                        "lm_head.weight")
    config = GPTConfig(block_size=block_size, vocab_size=padded_vocab_size(vocab), n_layer=n_layer,
                       n_head=n_head, n_embd=n_embd, dropout=dropout, bias="ln_f.bias" in state)
    model = GPT(config)
    ours = model.state_dict()
    seen: set[str] = set()
    for key, value in state.items():
        if key.startswith("lm_head"):
            continue  # tied to wte
        target = "transformer." + key
        if target not in ours:
            raise UserError(f"{label}: unexpected tensor {key} in {path}")
        if key.endswith(CONV1D_WEIGHTS) and value.dim() == 2:  # other shapes fail the shape check below
            value = value.t()
        if key == "wte.weight":  # pad the vocabulary rows
            padded = torch.zeros_like(ours[target])
            padded[: value.shape[0]] = value
            value = padded
        if value.shape != ours[target].shape:
            raise UserError(f"{label}: tensor {key} has shape {tuple(value.shape)}, "
                            f"expected {tuple(ours[target].shape)}")
        ours[target].copy_(value)
        seen.add(target)
    missing = [k for k in ours if k not in seen and not k.startswith("lm_head")]
    if missing:
        raise UserError(f"{label}: {path} lacks {len(missing)} tensors, e.g. {missing[0]}")
    return model, vocab


def load_gpt2_weights(path: str | Path, dropout: float = 0.0, label: str = "init_from") -> GPT:
    """Build a GPT from local GPT-2 weights (any size: gpt2, -medium, -large, -xl), single-file or
    sharded, safetensors or PyTorch .bin; see `load_hf_gpt2`."""
    return load_hf_gpt2(path, dropout, label)[0]
