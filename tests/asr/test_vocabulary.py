"""The medical vocabulary: file format, prompt budget, misheard-term candidates."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.asr.vocabulary import (
    BUNDLED,
    TermMatcher,
    load_vocabulary,
    prompt_terms,
    resolve_vocabulary,
)

COMMON = {"the", "and", "start", "we", "will", "continue", "take", "motion", "planning",
          "lipid", "on", "of", "in", "april", "this"}


def test_file_format_comments_blanks_and_duplicates(tmp_path: Path) -> None:
    f = tmp_path / "terms.txt"
    f.write_text("# header\nLisinopril\n\n  hemoglobin   A1C  # a test\nlisinopril\n")
    assert load_vocabulary(f) == ["Lisinopril", "hemoglobin A1C"]
    assert resolve_vocabulary("none") == []
    assert resolve_vocabulary(str(f)) == ["Lisinopril", "hemoglobin A1C"]
    with pytest.raises(ValueError, match="cannot read"):
        load_vocabulary(tmp_path / "missing.txt")


def test_bundled_vocabulary_has_drugs_and_tests() -> None:
    terms = {t.lower() for t in load_vocabulary(BUNDLED)}
    assert {"lisinopril", "metformin", "hemoglobin a1c", "lipid panel"} <= terms
    assert not {"take", "from", "with", "person"} & terms


def test_prompt_keeps_the_head_that_fits_the_budget() -> None:
    # Each term costs len(" term,"): 4 + 6 fit in 10, the third (4) does not.
    assert prompt_terms(["aa", "bbbb", "cc"], len, 10) == ["aa", "bbbb"]
    assert prompt_terms(["aa"], len, 3) == []


def test_matcher_proposes_misheard_terms_only() -> None:
    m = TermMatcher(["lisinopril", "protonix", "amoxicillin", "motrin", "plavix", "lipitor"],
                    lambda w: w in COMMON)
    assert m.candidates("we will continue the lisidopril and the protonics") == [
        "lisinopril", "protonix"]
    assert m.candidates("start this in April") == ["lisinopril"]  # a multi-word span
    assert m.candidates("start you on mexicillin") == ["amoxicillin"]
    # Common words are never candidates, nor terms already heard exactly.
    assert m.candidates("the motion and planning of the lipid panel") == []
    assert m.candidates("continue the lisinopril") == []


def test_decoder_loops_are_cut_off_the_end_but_real_repeats_stay() -> None:
    from server.asr.whisper_engine import trim_trailing_loop

    assert trim_trailing_loop([1, 2, 3, 9, 9, 9, 9]) == [1, 2, 3, 9]  # "a- a- a- a-"
    assert trim_trailing_loop([1, 5, 6, 7, 8, 5, 6, 7, 8]) == [1, 5, 6, 7, 8]  # a clause twice
    assert trim_trailing_loop([1, 2, 2]) == [1, 2, 2]  # "referral referral": said twice
    assert trim_trailing_loop([4, 1, 2, 1, 2, 1, 2]) == [4, 1, 2]
    # the decoder starting over: the utterance, then its first six tokens again
    assert trim_trailing_loop([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3, 4, 5, 6]) == [
        1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert trim_trailing_loop([1, 2, 3, 4, 5, 9, 1, 2, 3, 4, 5]) == [
        1, 2, 3, 4, 5, 9, 1, 2, 3, 4, 5]  # five tokens said twice: kept
