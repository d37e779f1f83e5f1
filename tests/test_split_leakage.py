"""Leak-free splits: deduplication, conflicting labels, near-identical groups, and the real AMP data.

The small inputs are built by hand and every count and grouping below is worked out by hand (the
k-mers are listed in the comments).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from helpers import require_data
from xdomain.datasets.peptides import amp_split, load_amp
from xdomain.datasets.sabdab import load_sabdab_cdr
from xdomain.datasets.sequences import (
    DedupCounts,
    deduplicate,
    group_split,
    near_identical_pairs,
    sequence_groups,
    sequence_key,
    similarity_groups,
    split_overlap,
)

AMP_UNIPROT = "peptides/amp_modlamp/AMPvsUniProt.csv"

# 0: 16 residues, 14 3-mers: GLF LFD FDI DIV IVK VKK KKV KVV VVG VGA GAL ALG LGS GSL
# 1: K8 -> A: VKK KKV KVV become VKA KAV AVV (none of them in 0): shares 11 of 14 with 0
# 2: a fragment of 0 (FDI DIV IVK VKK KKV KVV VVG VGA): 8 of 8 with 0; with 1: FDI DIV IVK VVG VGA, 5 of 8
# 3: nothing in common with any other
# 4/5: KKK x3 / KKK x2 KKA KAK AKK: counted with multiplicity they share 2 of 4's 3 k-mers (as sets: 1 of 1)
# 6: shorter than k: no k-mers
NEAR = ["GLFDIVKKVVGALGSL", "GLFDIVKAVVGALGSL", "FDIVKKVVGA", "WWWWPPPP", "KKKKK", "KKKAKKK", "AC"]


def _pairs(i: np.ndarray, j: np.ndarray, f: np.ndarray) -> list[tuple[int, int, float]]:
    return [(int(a), int(b), round(float(c), 6)) for a, b, c in zip(i, j, f, strict=True)]


# -- deduplication --------------------------------------------------------------------------------------


def test_deduplicate_counts_by_hand() -> None:
    sequences = ["ACDE", "acde ", "KLLK", "KLLK", "GGG", "GGG", "GGG", "WW"]
    labels = [1, 1, 0, 1, 0, 0, 0, 1]
    # ACDE: rows 0, 1 (labels 1, 1); KLLK: rows 2, 3 (0 and 1: a conflict); GGG: rows 4-6; WW: row 7
    kept, counts = deduplicate(sequences, labels)
    assert kept.tolist() == [0, 4, 7] and kept.dtype == np.int64
    assert counts == DedupCounts(
        rows=8, unique=4, duplicates_removed=4, conflicting_sequences=1, conflicting_rows=2, kept=3
    )
    assert counts.as_dict() == {
        "rows": 8,
        "unique": 4,
        "duplicates_removed": 4,
        "conflicting_sequences": 1,
        "conflicting_rows": 2,
        "kept": 3,
    }
    assert str(counts) == (
        "8 rows read, 4 duplicate rows removed (4 unique sequences), 1 sequences with conflicting labels "
        "(2 rows) dropped: 3 rows kept"
    )
    kept_all, counts_all = deduplicate(sequences, labels, drop_conflicts=False)
    assert (
        kept_all.tolist() == [0, 2, 4, 7] and counts_all.kept == 4 and counts_all.conflicting_sequences == 1
    )
    unlabelled, plain = deduplicate(sequences)
    assert unlabelled.tolist() == [0, 2, 4, 7] and plain.conflicting_sequences == 0
    with pytest.raises(ValueError, match="got 8 sequences but 2 labels"):
        deduplicate(sequences, [0, 1])


def test_deduplicate_compares_array_labels_by_value() -> None:
    masks = [np.array([0, 3, 3]), np.array([0, 3, 3]), np.array([0, 3, 3]), np.array([0, 0, 3])]
    kept, counts = deduplicate(["ACD", "ACD", "EFG", "EFG"], masks)
    assert kept.tolist() == [0] and (counts.unique, counts.conflicting_sequences, counts.kept) == (2, 1, 1)


def test_sequence_key_and_groups() -> None:
    assert sequence_key(" glf\n") == "GLF"
    assert sequence_groups(["KLK", "GLF", "klk", "KLK ", "AAA", "GLF"]).tolist() == [0, 1, 0, 0, 2, 1]


def _write_amp(home: Path, rows: list[tuple[str, int]]) -> None:
    folder = home / "peptides" / "amp_modlamp"
    folder.mkdir(parents=True)
    body = "".join(f"{s},{y}\n" for s, y in rows)
    (folder / "AMPvsUniProt.csv").write_text(f"{len(rows)},1,UniProt,AMP\n{body}")


def test_load_amp_deduplicates_and_reports(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = [("GLFDIV", 1), ("KKLLKK", 1), ("GLFDIV", 1), ("MSTNPK", 0), ("KKLLKK", 0), ("AAWWK", 0)]
    _write_amp(tmp_path, rows)
    with caplog.at_level(logging.INFO, logger="xdomain.datasets.peptides"):
        sequences, labels, counts = load_amp(data_home=tmp_path, return_counts=True)
    # GLFDIV twice (label 1 both times), KKLLKK with labels 1 and 0: dropped
    assert sequences == ["GLFDIV", "MSTNPK", "AAWWK"] and labels.tolist() == [1, 0, 0]
    assert labels.dtype == np.int64
    assert counts == DedupCounts(6, 4, 2, 1, 2, 3)
    assert "6 rows read, 2 duplicate rows removed" in caplog.text
    plain = load_amp(data_home=tmp_path)
    assert len(plain) == 2 and plain[0] == sequences
    raw, raw_labels, same = load_amp(data_home=tmp_path, dedup=False, return_counts=True)
    assert raw == [s for s, _ in rows] and raw_labels.tolist() == [y for _, y in rows] and same == counts


# -- near-identical pairs and groups ---------------------------------------------------------------------


def test_near_identical_pairs_by_hand() -> None:
    pairs = _pairs(*near_identical_pairs(NEAR))
    assert pairs == [
        (0, 1, round(11 / 14, 6)),
        (0, 2, 1.0),
        (1, 2, round(5 / 8, 6)),
        (4, 5, round(2 / 3, 6)),
    ]
    assert _pairs(*near_identical_pairs(NEAR, min_shared=0.7)) == [(0, 1, round(11 / 14, 6)), (0, 2, 1.0)]
    # the same pairs a block at a time, and in lower case
    assert _pairs(*near_identical_pairs([s.lower() for s in NEAR], block_size=2)) == pairs
    assert [len(a) for a in near_identical_pairs(["AC", "WWW"])] == [0, 0, 0]
    with pytest.raises(ValueError, match="min_shared must be a fraction"):
        near_identical_pairs(NEAR, min_shared=0.0)
    with pytest.raises(ValueError, match="k must be a positive int"):
        near_identical_pairs(NEAR, k=0)


def test_similarity_groups_by_hand() -> None:
    sequences = [*NEAR, "wwwwpppp", "AC"]
    # {0, 1, 2}, {3, 7: the same sequence}, {4, 5}, {6, 8: identical, too short for a k-mer}
    assert similarity_groups(sequences).tolist() == [0, 0, 0, 1, 2, 2, 3, 1, 3]
    # at 0.7, 1 and 2 are no longer a pair but are still linked through 0; 4 and 5 part
    assert similarity_groups(sequences, min_shared=0.7).tolist() == [0, 0, 0, 1, 2, 3, 4, 1, 4]
    # k = 1: 4 (K x5) and 5 (K x6, A) share 5 of 5 residues; 6 (A, C) shares A with 5, 1 of 2
    assert similarity_groups(["KKKKK", "KKKAKKK", "AC"], k=1).tolist() == [0, 0, 0]


def test_similarity_groups_are_fast_enough_for_thousands() -> None:
    rng = np.random.default_rng(0)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    sequences = ["".join(rng.choice(letters, int(rng.integers(10, 50)))) for _ in range(3000)]
    # a near copy of each of the first 100: one substitution in the middle
    copies = [
        s[: len(s) // 2] + ("A" if s[len(s) // 2] != "A" else "C") + s[len(s) // 2 + 1 :]
        for s in sequences[:100]
    ]
    groups = similarity_groups(sequences + copies)
    assert (groups[3000:] == groups[:100]).all()
    assert len(np.unique(groups)) <= 3000


# -- splits ------------------------------------------------------------------------------------------


def _duplicated_peptides(n: int = 50, copies: int = 4) -> tuple[list[str], np.ndarray]:
    """``n`` distinct peptides, each ``copies`` times (in upper, lower case and padded), interleaved."""
    rng = np.random.default_rng(1)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    base = ["".join(rng.choice(letters, 12)) for _ in range(n)]
    sequences, labels = [], []
    for c in range(copies):
        for i, s in enumerate(base):
            sequences.append(s.lower() if c == 1 else f" {s}" if c == 2 else s)
            labels.append(i % 2)
    return sequences, np.array(labels)


def test_unique_split_keeps_identical_sequences_on_one_side() -> None:
    sequences, labels = _duplicated_peptides()
    train, test = amp_split(sequences, labels, test_size=0.2, seed=0)
    assert set(train.tolist()) | set(test.tolist()) == set(range(200)) and not set(train) & set(test)
    train_keys = {sequence_key(sequences[i]) for i in train}
    assert not any(sequence_key(sequences[i]) in train_keys for i in test)
    # whole groups of 4: 10 of the 50 peptides (5 of each label) are test
    assert len(test) == 40 and np.bincount(labels[test]).tolist() == [20, 20]
    assert (
        split_overlap([sequences[i] for i in train], [sequences[i] for i in test])["test_rows_in_train"] == 0
    )
    # the old row split leaks them
    rows_train, rows_test = amp_split(sequences, labels, test_size=0.2, seed=0, split="rows")
    leaks = split_overlap([sequences[i] for i in rows_train], [sequences[i] for i in rows_test])
    assert leaks["test_rows_in_train"] > 0


def test_rows_split_is_the_old_split() -> None:
    from sklearn.model_selection import train_test_split

    sequences, labels = _duplicated_peptides()
    old_train, old_test = train_test_split(np.arange(200), test_size=0.2, random_state=3, stratify=labels)
    train, test = amp_split(sequences, labels, test_size=0.2, seed=3, split="rows")
    assert np.array_equal(train, np.sort(old_train)) and np.array_equal(test, np.sort(old_test))
    with pytest.raises(
        ValueError, match=r"unknown split 'cluster'; expected one of \['unique', 'similarity'"
    ):
        amp_split(sequences, labels, split="cluster")


def test_similarity_split_keeps_groups_whole() -> None:
    rng = np.random.default_rng(2)
    letters = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    sequences: list[str] = []
    labels: list[int] = []
    for family in range(40):  # 40 families of 1 to 5 near copies (single substitutions), one label each
        parent = "".join(rng.choice(letters, 20))
        for _ in range(int(rng.integers(1, 6))):
            at = int(rng.integers(0, 20))
            sequences.append(parent[:at] + str(rng.choice(letters)) + parent[at + 1 :])
            labels.append(family % 2)
    y = np.array(labels)
    groups = similarity_groups(sequences)
    train, test = amp_split(sequences, y, test_size=0.25, seed=5, split="similarity")
    on_test = np.zeros(len(y), dtype=bool)
    on_test[test] = True
    for g in np.unique(groups):
        assert len(set(on_test[groups == g].tolist())) == 1, f"group {g} straddles the split"
    overlap = split_overlap([sequences[i] for i in train], [sequences[i] for i in test])
    assert overlap["near_pairs"] == 0 and overlap["test_sequences_near_train"] == 0
    # stratified as nearly as whole groups allow: targets round(0.25 * n_c)
    targets = np.round(0.25 * np.bincount(y))
    assert np.abs(np.bincount(y[test], minlength=2) - targets).max() <= 5
    again = amp_split(sequences, y, test_size=0.25, seed=5, split="similarity")
    assert np.array_equal(again[0], train) and np.array_equal(again[1], test)


def test_group_split_is_stratified_deterministic_and_whole() -> None:
    labels = np.array([0] * 60 + [1] * 40)
    train, test = group_split(np.arange(100), labels, test_size=0.2, seed=0)
    assert np.bincount(labels[test]).tolist() == [12, 8] and len(train) == 80
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    again = group_split(np.arange(100), labels, test_size=0.2, seed=0)
    other = group_split(np.arange(100), labels, test_size=0.2, seed=1)
    assert np.array_equal(again[1], test) and not np.array_equal(other[1], test)
    # groups of 5 (one label each): 12 / 5 and 8 / 5 are not whole; 2 groups of each label come closest
    groups = np.arange(100) // 5
    _, test5 = group_split(groups, labels, test_size=0.2, seed=0)
    assert np.bincount(labels[test5], minlength=2).tolist() == [10, 10]
    assert set(groups[test5]).isdisjoint(groups[np.setdiff1d(np.arange(100), test5)])
    with pytest.raises(ValueError, match="every group went to the train side"):
        group_split(np.zeros(100, dtype=int), labels)
    with pytest.raises(ValueError, match="test_size must be a fraction"):
        group_split(np.arange(100), labels, test_size=1.0)


def test_split_overlap_by_hand() -> None:
    train = ["GLFDIVKKVVGALGSL", "KKKKK", "MMM"]
    test = ["glfdivkkvvgalgsl", "GLFDIVKAVVGALGSL", "KKKAKKK", "WWWWPPPP", "GLFDIVKKVVGALGSL"]
    assert split_overlap(train, test) == {
        "test_rows_in_train": 2,  # rows 0 and 4
        "shared_sequences": 1,
        "near_pairs": 2,  # (GLF...KKV..., GLF...KAV...) and (KKKKK, KKKAKKK)
        "test_sequences_near_train": 3,  # GLF...KKV... itself, GLF...KAV..., KKKAKKK
    }


# -- SAbDab options ----------------------------------------------------------------------------------


def _write_sabdab(home: Path) -> None:
    folder = home / "antibodies" / "sabdab_cdr"
    folder.mkdir(parents=True)
    (folder / "sabdab_hcdr3_cluster_val.csv").write_text(
        "pdb,seq,cdr\n1aaa,ACDE,0033\n2aaa,ACDE,0033\n3aaa,KLMN,0330\n4aaa,KLMN,0033\n5aaa,GGHH,0330\n"
    )
    (folder / "rabd_test.csv").write_text("pdb,seq,cdr\n6aaa,ACDE,0033\n7aaa,WYWY,0333\n8aaa,ggHH,0330\n")


def test_sabdab_unique_and_exclude(tmp_path: Path) -> None:
    _write_sabdab(tmp_path)
    chains, _, ids = load_sabdab_cdr("val", data_home=tmp_path)
    assert ids == ["1aaa", "2aaa", "3aaa", "4aaa", "5aaa"]  # the official file, row for row, by default
    # ACDE twice with one mask: its first row; KLMN with two masks: dropped
    chains, masks, ids = load_sabdab_cdr("val", data_home=tmp_path, unique=True)
    assert ids == ["1aaa", "5aaa"] and chains == ["ACDE", "GGHH"] and masks[1].tolist() == [0, 3, 3, 0]
    _, _, rabd = load_sabdab_cdr("rabd", data_home=tmp_path, exclude="val")
    assert rabd == ["7aaa"]  # ACDE and GGHH (as ggHH) are val chains
    assert load_sabdab_cdr("rabd", data_home=tmp_path, exclude=["val"], unique=True)[2] == ["7aaa"]
    with pytest.raises(ValueError, match="names the split 'rabd' itself"):
        load_sabdab_cdr("rabd", data_home=tmp_path, exclude="rabd")


# -- the real data -------------------------------------------------------------------------------------


def test_real_amp_default_split_has_no_exact_overlap() -> None:
    """The loader and split as every caller uses them: no test peptide may be a train peptide (the old
    row split put 142 of its 1,040 test rows in train as well)."""
    require_data(AMP_UNIPROT)
    sequences, labels = load_amp("amp_uniprot")
    train, test = amp_split(sequences, labels, test_size=0.2, seed=0)
    train_keys = {sequence_key(sequences[i]) for i in train}
    leaked = [i for i in test if sequence_key(sequences[i]) in train_keys]
    assert not leaked, f"{len(leaked)} of {len(test)} test rows also appear in train"
    assert len(set(train) | set(test)) == len(sequences) and not set(train) & set(test)


def test_real_amp_counts() -> None:
    require_data(AMP_UNIPROT)
    sequences, labels, counts = load_amp("amp_uniprot", return_counts=True)
    assert counts == DedupCounts(
        rows=5200,
        unique=4642,
        duplicates_removed=558,
        conflicting_sequences=22,
        conflicting_rows=47,
        kept=4620,
    )
    assert len(sequences) == 4620 and len({sequence_key(s) for s in sequences}) == 4620
    train, test = amp_split(sequences, labels, test_size=0.2, seed=0)
    overlap = split_overlap([sequences[i] for i in train], [sequences[i] for i in test])
    assert overlap["test_rows_in_train"] == 0 and overlap["shared_sequences"] == 0
    assert len(test) == 924 and np.bincount(labels[test]).tolist() == [416, 508]
    # the raw rows, split by the default: duplicates stay together there too
    raw, raw_labels = load_amp("amp_uniprot", dedup=False)
    tr, te = amp_split(raw, raw_labels, test_size=0.2, seed=0)
    assert split_overlap([raw[i] for i in tr], [raw[i] for i in te])["test_rows_in_train"] == 0
    # the old row split of the raw rows: 142 of its 1,040 test rows are in train
    tr, te = amp_split(raw, raw_labels, test_size=0.2, seed=0, split="rows")
    assert len(te) == 1040
    assert split_overlap([raw[i] for i in tr], [raw[i] for i in te])["test_rows_in_train"] == 142


def test_real_amp_similarity_split_has_no_near_duplicates() -> None:
    require_data(AMP_UNIPROT)
    sequences, labels = load_amp("amp_uniprot")
    train, test = amp_split(sequences, labels, test_size=0.2, seed=0, split="similarity")
    overlap = split_overlap([sequences[i] for i in train], [sequences[i] for i in test])
    assert overlap == {
        "test_rows_in_train": 0,
        "shared_sequences": 0,
        "near_pairs": 0,
        "test_sequences_near_train": 0,
    }
    again, _ = amp_split(sequences, labels, test_size=0.2, seed=0, split="similarity")
    assert np.array_equal(again, train)


def test_real_sabdab_rabd_overlaps_val() -> None:
    require_data("antibodies/sabdab_cdr/rabd_test.csv")
    require_data("antibodies/sabdab_cdr/sabdab_hcdr3_cluster_val.csv")
    val, _, _ = load_sabdab_cdr("val")
    rabd, _, _ = load_sabdab_cdr("rabd")
    assert split_overlap(val, rabd)["test_rows_in_train"] == 5
    kept, _, _ = load_sabdab_cdr("rabd", exclude="val")
    assert len(kept) == 53 and split_overlap(val, kept)["test_rows_in_train"] == 0


def test_real_deepsol_official_split_has_no_exact_overlap() -> None:
    from xdomain.datasets.deepsol import load_deepsol

    require_data("proteins/solubility_deepsol/val_src")
    require_data("proteins/solubility_deepsol/test_src")
    val_x, val_y = load_deepsol("val", download=False)
    test_x, test_y = load_deepsol("test", download=False)
    assert deduplicate(val_x + test_x, np.concatenate([val_y, test_y]))[1].duplicates_removed == 0
