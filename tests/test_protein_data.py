"""Protein alphabet and encoding, antibody CDR masks, and the peptide / protein / antibody loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import require_data
from xdomain.adapters.antibody import (
    IGNORE_INDEX,
    REGION_PAD,
    REGIONS,
    AntibodyAdapter,
    encode_antibodies,
    mask_region,
    parse_cdr_mask,
)
from xdomain.adapters.protein import (
    AMINO_ACIDS,
    MASK_ID,
    PAD_ID,
    PROTEIN_VOCAB,
    ProteinAdapter,
    decode_proteins,
    encode_proteins,
    windows,
)
from xdomain.datasets.deepsol import load_deepsol, read_deepsol_pair
from xdomain.datasets.home import DataNotFoundError
from xdomain.datasets.peptides import amp_split, load_amp, read_modlamp_csv
from xdomain.datasets.sabdab import load_sabdab_cdr, read_cdr_csv
from xdomain.registry import ADAPTERS, DATASETS

# -- alphabet -----------------------------------------------------------------------------------------


def test_vocabulary_is_explicit() -> None:
    assert AMINO_ACIDS == "ACDEFGHIKLMNPQRSTVWY"
    assert PROTEIN_VOCAB[0] == "<pad>" and PAD_ID == 0
    assert PROTEIN_VOCAB[MASK_ID] == "<mask>"
    assert PROTEIN_VOCAB[1:21] == list(AMINO_ACIDS)
    assert set(PROTEIN_VOCAB[21:27]) == set("BZJXUO")
    assert len(PROTEIN_VOCAB) == len(set(PROTEIN_VOCAB)) == 28


def test_encode_by_hand() -> None:
    # A=1 C=2 D=3 (standard order), X=24 (B Z J X U O follow the 20 at 21..26)
    ids = encode_proteins(["acdX", "M", "BZJUO"])
    expected = torch.tensor([[1, 2, 3, 24, 0], [11, 0, 0, 0, 0], [21, 22, 23, 25, 26]])
    assert ids.dtype == torch.long
    assert torch.equal(ids, expected)
    assert decode_proteins(ids) == ["ACDX", "M", "BZJUO"]


def test_stop_and_whitespace_at_the_ends_are_dropped_and_input_untouched() -> None:
    sequences = ["  mkv*\n", "GG\t"]
    ids = encode_proteins(sequences)
    assert torch.equal(ids, torch.tensor([[11, 9, 18], [6, 6, 0]]))
    assert sequences == ["  mkv*\n", "GG\t"]


@pytest.mark.parametrize(
    ("sequences", "error", "match"),
    [
        (["ACD", "AC1D"], ValueError, r"sequence 1 has '1' at position 3"),
        (["AC D"], ValueError, r"sequence 0 has ' ' at position 3"),
        (["  AC-D"], ValueError, r"sequence 0 has '-' at position 5"),  # positions in the caller's string
        (["MK*V"], ValueError, r"sequence 0 has '\*' at position 3"),
        (["ACD**"], ValueError, r"'\*' at position 4"),
        (["ACD", ""], ValueError, r"sequence 1 is empty"),
        (["ACD", " *\n"], ValueError, r"sequence 1 is empty"),
        (["Aß"], ValueError, r"'ß' at position 2"),
        ([], ValueError, r"sequences is empty"),
        ("ACDEF", TypeError, r"got a single str 'ACDEF'.*list"),
        ([b"ACD"], TypeError, r"sequence 0 must be a str, got bytes"),
    ],
)
def test_encode_errors(sequences: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        encode_proteins(sequences)  # type: ignore[arg-type]


def test_too_long_errors_or_truncates() -> None:
    with pytest.raises(ValueError, match=r"sequence 1 has 6 residues, more than max_length=4"):
        encode_proteins(["ACD", "ACDEFG"], max_length=4)
    ids = encode_proteins(["ACD", "acdefg"], max_length=4, too_long="truncate")
    assert torch.equal(ids, torch.tensor([[1, 2, 3, 0], [1, 2, 3, 4]]))
    # the batch is padded to its longest sequence, not to max_length
    assert encode_proteins(["AC"], max_length=10).shape == (1, 2)
    with pytest.raises(ValueError, match=r"too_long must be one of \('error', 'truncate'\), got 'cut'"):
        encode_proteins(["ACD"], max_length=2, too_long="cut")
    with pytest.raises(ValueError, match=r"max_length must be a positive int or None, got 0"):
        encode_proteins(["ACD"], max_length=0)


def test_windows_cover_every_residue() -> None:
    seq = "ABCDEFGHIJ"
    assert windows(seq, 4, 3) == ["ABCD", "DEFG", "GHIJ"]
    # non-overlapping by default; the last window is aligned to the end
    assert windows(seq, 4) == ["ABCD", "EFGH", "GHIJ"]
    assert windows(seq, 5, 5) == ["ABCDE", "FGHIJ"]
    assert windows("ABC", 8, 2) == ["ABC"]
    covered = set()
    for w in windows(seq, 3, 2):
        start = seq.index(w)
        covered |= set(range(start, start + 3))
    assert covered == set(range(len(seq)))
    with pytest.raises(ValueError, match=r"stride must be an int in \[1, length=4\].*got 5"):
        windows(seq, 4, 5)
    with pytest.raises(ValueError, match=r"window length must be a positive int, got 0"):
        windows(seq, 0)
    with pytest.raises(ValueError, match="empty sequence"):
        windows("", 3)


def test_protein_adapter() -> None:
    adapter = ADAPTERS.build("protein", max_length=3, too_long="truncate")
    assert isinstance(adapter, ProteinAdapter)
    ids = adapter.tokenize(["acdef", "G"])
    assert torch.equal(ids, torch.tensor([[1, 2, 3], [6, 0, 0]]))
    out, state = adapter.encode(ids)
    assert out is ids
    assert torch.equal(state["attention_mask"], torch.tensor([[True, True, True], [True, False, False]]))
    y = torch.randn(2, 2)
    assert adapter.decode(y, state) is y
    assert adapter.vocab_size == len(PROTEIN_VOCAB)
    with pytest.raises(ValueError, match=r"sequence 0 has 5 residues, more than max_length=3"):
        ProteinAdapter(max_length=3).tokenize(["ACDEF"])
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 28\), got values from 0 to 28"):
        adapter.encode(torch.tensor([[0, 28]]))
    with pytest.raises(TypeError, match=r"integer tensor, got dtype torch\.float32"):
        adapter.encode(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"ids must be \(B, L\), got shape \(3,\)"):
        adapter.encode(torch.tensor([1, 2, 3]))


# -- antibodies -----------------------------------------------------------------------------------------


def test_parse_cdr_mask() -> None:
    assert parse_cdr_mask("0011022300").tolist() == [0, 0, 1, 1, 0, 2, 2, 3, 0, 0]
    assert parse_cdr_mask([0, 3, 3]).dtype == np.int64
    with pytest.raises(ValueError, match=r"CDR mask has '4' at position 3"):
        parse_cdr_mask("004")
    with pytest.raises(ValueError, match=r"CDR mask has 7 at position 2"):
        parse_cdr_mask([0, 7])
    with pytest.raises(TypeError, match=r"integers 0\.\.3, got dtype float64"):
        parse_cdr_mask(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="empty"):
        parse_cdr_mask("")


def test_encode_antibodies_by_hand() -> None:
    ids, regions = encode_antibodies(["ACDEF", "gh"], ["01230", [0, 3]])
    assert torch.equal(ids, torch.tensor([[1, 2, 3, 4, 5], [6, 7, 0, 0, 0]]))
    assert torch.equal(regions, torch.tensor([[0, 1, 2, 3, 0], [0, 3, REGION_PAD, REGION_PAD, REGION_PAD]]))


def test_encode_antibodies_errors() -> None:
    with pytest.raises(ValueError, match=r"chain 1 has 2 residues but its CDR mask has 3 codes"):
        encode_antibodies(["ACD", "AC"], ["000", "000"])
    with pytest.raises(ValueError, match=r"CDR mask 0: CDR mask has 'x' at position 2"):
        encode_antibodies(["ACD"], ["0x0"])
    with pytest.raises(ValueError, match=r"got 2 chains but 1 CDR masks"):
        encode_antibodies(["ACD", "AC"], ["000"])
    with pytest.raises(ValueError, match=r"chain 0 has 3 residues, more than max_length=2"):
        encode_antibodies(["ACD"], ["033"], max_length=2)
    ids, regions = encode_antibodies(["ACD"], ["033"], max_length=2, too_long="truncate")
    assert ids.tolist() == [[1, 2]] and regions.tolist() == [[0, 3]]


def test_mask_region() -> None:
    ids, regions = encode_antibodies(["ACDEF", "GHIKL"], ["01330", "00300"])
    masked, targets = mask_region(ids, regions, "CDR-H3", mask_id=MASK_ID)
    assert masked.tolist() == [[1, 2, MASK_ID, MASK_ID, 5], [6, 7, MASK_ID, 9, 10]]
    assert targets.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 3, 4, IGNORE_INDEX], [-100, -100, 8, -100, -100]]
    assert ids.tolist() == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]  # inputs untouched
    # the targets drive cross-entropy over the region only
    logits = torch.zeros(2, 5, len(PROTEIN_VOCAB))
    loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets)
    assert loss.item() == pytest.approx(np.log(len(PROTEIN_VOCAB)))
    valid = r"\['CDR-H1', 'CDR-H2', 'CDR-H3'\]"
    with pytest.raises(ValueError, match=rf"unknown region 'CDR-L3'; expected one of {valid}"):
        mask_region(ids, regions, "CDR-L3")
    with pytest.raises(ValueError, match=r"1 chain\(s\) have no CDR-H1 to mask: rows \[1\]"):
        mask_region(ids, regions, "cdr-h1")


def test_antibody_adapter() -> None:
    adapter = ADAPTERS.build("antibody")
    assert isinstance(adapter, AntibodyAdapter)
    ids, regions = adapter.tokenize_chains(["ACDE"], ["0033"])
    masked, targets = adapter.mask(ids, regions)
    assert masked.tolist() == [[1, 2, MASK_ID, MASK_ID]]
    assert targets.tolist() == [[IGNORE_INDEX, IGNORE_INDEX, 3, 4]]
    out, state = adapter.encode(masked)
    assert state["attention_mask"].all()
    assert adapter.decode(out, state) is out


# -- loaders: the real data -------------------------------------------------------------------------------


def test_amp_uniprot_real() -> None:
    require_data("peptides/amp_modlamp/AMPvsUniProt.csv")
    raw, raw_labels = load_amp("amp_uniprot", dedup=False)
    assert len(raw) == len(raw_labels) == 5200 and np.bincount(raw_labels).tolist() == [2600, 2600]
    # by default one row a distinct sequence, the 22 sequences that carry both labels dropped
    sequences, labels = load_amp("amp_uniprot")
    assert len(sequences) == len(labels) == 4620
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [2080, 2540]
    assert sequences[0] == "GLWSKIKEVGKEAAKAAAKAAGKAALGAVSEAV" and labels[0] == 1
    assert all(set(s) <= set(AMINO_ACIDS) for s in sequences)
    assert DATASETS.build("amp_uniprot")[0] == sequences


def test_amp_transmembrane_real() -> None:
    require_data("peptides/amp_modlamp/AMPvsTMset.csv")
    sequences, labels = load_amp("amp_transmembrane")
    assert len(sequences) == 412 and np.bincount(labels).tolist() == [206, 206]
    assert sequences[0] == "AAGAATVLLVIVLLAGSYLAVLA" and labels[0] == 0


def test_amp_split_is_fixed_and_stratified() -> None:
    labels = np.array([0] * 60 + [1] * 40)
    sequences = ["A" * (i + 1) for i in range(100)]  # distinct: the split keeps identical ones together
    train, test = amp_split(sequences, labels, test_size=0.2, seed=0)
    assert len(test) == 20 and len(train) == 80
    assert np.bincount(labels[test]).tolist() == [12, 8]
    assert set(train) | set(test) == set(range(100)) and not set(train) & set(test)
    again, _ = amp_split(sequences, labels, test_size=0.2, seed=0)
    other, _ = amp_split(sequences, labels, test_size=0.2, seed=1)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
    with pytest.raises(ValueError, match="got 100 sequences but 99 labels"):
        amp_split(sequences, labels[:99])


def test_amp_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown AMP data set 'amp'; expected one of \['amp_transm"):
        load_amp("amp")
    with pytest.raises(DataNotFoundError, match=r"AMPvsUniProt\.csv.*peptides/amp_modlamp.*modlAMP wheel"):
        load_amp("amp_uniprot", data_home=tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("3,1,UniProt,AMP\nACD,1\nEFG,0\n")
    with pytest.raises(ValueError, match="announces 3 sequences in its header but holds 2"):
        read_modlamp_csv(bad)
    bad.write_text("2,1,UniProt,AMP\nACD,1\nEFG,2\n")
    with pytest.raises(ValueError, match=r"line 3 is 'EFG,2'; expected 'sequence,label'"):
        read_modlamp_csv(bad)
    bad.write_text("sequence,label\nACD,1\n")
    with pytest.raises(ValueError, match="expected the modlAMP header"):
        read_modlamp_csv(bad)


def test_amp_from_an_installed_modlamp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site" / "modlamp"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('the loader must not import modlamp')\n")
    (package / "data" / "AMPvsTMset.csv").write_text("2,1,TM,AMP\nLLVIV,0\nKKLLK, 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sequences, labels = load_amp("amp_transmembrane", data_home=tmp_path / "empty-home")
    assert sequences == ["LLVIV", "KKLLK"] and labels.tolist() == [0, 1]


def test_deepsol_real() -> None:
    require_data("proteins/solubility_deepsol/test_src")
    require_data("proteins/solubility_deepsol/val_src")
    test_x, test_y = load_deepsol("test")
    val_x, val_y = load_deepsol("val")
    assert len(test_x) == len(test_y) == 2001 and int(test_y.sum()) == 1000
    assert len(val_x) == len(val_y) == 6942 and int(val_y.sum()) == 2897
    assert test_x[0].startswith("MLSVRIAAAVARALPRRAG")
    assert all(s and set(s) <= set(AMINO_ACIDS) for s in test_x)
    ids = encode_proteins(test_x[:4], max_length=64, too_long="truncate")
    assert ids.shape == (4, 64) and (ids > 0).all()


def test_deepsol_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    splits = r"\['test', 'train', 'val'\]"
    with pytest.raises(ValueError, match=rf"unknown DeepSol split 'train2'; expected one of {splits}"):
        load_deepsol("train2")
    # offline, a missing file is an error that names where it goes and where it comes from
    monkeypatch.setenv("XDOMAIN_OFFLINE", "1")
    with pytest.raises(DataNotFoundError, match=r"test_src.*solubility_deepsol.*DSOL_rv0\.2"):
        load_deepsol("test", data_home=tmp_path)
    src, tgt = tmp_path / "x_src", tmp_path / "x_tgt"
    src.write_text("ACD\nEFG\nHIK\n")
    tgt.write_text("1\n0\n")
    with pytest.raises(ValueError, match="x_src holds 3 sequences but x_tgt holds 2 labels"):
        read_deepsol_pair(src, tgt)
    tgt.write_text("1\n0\n5\n")
    with pytest.raises(ValueError, match=r"x_tgt line 3 is '5'; expected the label 0 or 1"):
        read_deepsol_pair(src, tgt)
    tgt.write_text("1\n0\n1\n")
    sequences, labels = read_deepsol_pair(src, tgt)
    assert sequences == ["ACD", "EFG", "HIK"] and labels.tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    ("split", "filename", "count"),
    [
        ("val", "sabdab_hcdr3_cluster_val.csv", 403),
        ("test", "sabdab_hcdr3_cluster_test.csv", 437),
        ("rabd", "rabd_test.csv", 58),
    ],
)
def test_sabdab_real(split: str, filename: str, count: int) -> None:
    require_data(f"antibodies/sabdab_cdr/{filename}")
    chains, masks, ids = load_sabdab_cdr(split)
    assert len(chains) == len(masks) == len(ids) == count
    assert all(len(m) == len(c) for c, m in zip(chains, masks, strict=True))
    assert all((m == REGIONS["CDR-H3"]).any() for m in masks)
    assert all(set(np.unique(m)) <= {0, 1, 2, 3} for m in masks)
    assert all(isinstance(i, str) and len(i) == 4 for i in ids)
    ids_t, regions = encode_antibodies(chains, masks)
    masked, targets = mask_region(ids_t, regions, "CDR-H3")
    assert (targets != IGNORE_INDEX).sum().item() == sum(int((m == 3).sum()) for m in masks)
    assert torch.equal(masked == MASK_ID, targets != IGNORE_INDEX)


def test_sabdab_first_rows_by_hand() -> None:
    require_data("antibodies/sabdab_cdr/rabd_test.csv")
    chains, masks, ids = load_sabdab_cdr("rabd")
    assert ids[:2] == ["4ffv", "3hi6"]
    assert chains[0].startswith("EFQLQQSGPELVKPGASVKISCKASGYSFTDYNIN")
    h3 = "".join(c for c, m in zip(chains[0], masks[0], strict=True) if m == 3)
    assert h3 == "TRFRDVFFDV"


def test_sabdab_errors(tmp_path: Path) -> None:
    splits = r"\['rabd', 'test', 'val'\]"
    with pytest.raises(ValueError, match=rf"unknown SAbDab split 'train'; expected one of {splits}"):
        load_sabdab_cdr("train")
    with pytest.raises(DataNotFoundError, match=r"rabd_test\.csv.*sabdab_cdr.*RefineGNN.*rabd/test\.jsonl"):
        load_sabdab_cdr("rabd", data_home=tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("pdb,seq,cdr\n1e10,ACDE,0033\n2abc,ACD,0033\n")
    with pytest.raises(ValueError, match=r"row 2 \(2abc\): the chain has 3 residues but its CDR mask has 4"):
        read_cdr_csv(bad)
    bad.write_text("pdb,seq,cdr\n1e10,ACDE,00x3\n")
    with pytest.raises(ValueError, match=r"data row 1 \(1e10\): CDR mask has 'x' at position 3"):
        read_cdr_csv(bad)
    bad.write_text("pdb,sequence,cdr\n1e10,ACDE,0033\n")
    with pytest.raises(ValueError, match=r"lacks the columns \['seq'\]"):
        read_cdr_csv(bad)
    bad.write_text("pdb,seq,cdr\n1e10,ACDE,0033\n")
    assert read_cdr_csv(bad)[2] == ["1e10"]  # a PDB id that looks like a number stays text
