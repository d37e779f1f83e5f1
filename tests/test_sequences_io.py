"""Sequence I/O through Biopython: FASTA round trips, records, mixed inputs, clear errors, user CSVs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from Bio import SeqIO
from Bio.Seq import Seq
from Bio.SeqRecord import SeqRecord

from xdomain.adapters.protein import ProteinAdapter
from xdomain.datasets.sequences import SequenceSet, read_labelled_csv, read_sequences, write_fasta


def test_fasta_round_trip_is_exact(tmp_path: Path) -> None:
    sequences = ["MKVLAAGIVGLLLA" * 6, "acdefghik", "M", "PEPTIDE*"]  # long (wrapped), lower case, a stop
    ids = ["sp|P69905|HBA_HUMAN", "p2", "p3", "p4"]
    descriptions = ["Hemoglobin subunit alpha OS=Homo sapiens", "", "  leading spaces", "p4 repeats its id"]
    path = write_fasta(sequences, tmp_path / "out.fasta", ids=ids, descriptions=descriptions)
    assert path == tmp_path / "out.fasta"
    back = read_sequences(path)
    assert back.sequences == sequences
    assert back.ids == ids
    assert back.descriptions == descriptions
    text = path.read_text()
    assert text.startswith(">sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OS=Homo sapiens\n")
    assert ">p2\nacdefghik\n" in text  # case kept
    # the same file through Biopython directly: standard FASTA
    records = list(SeqIO.parse(path, "fasta"))
    assert [str(r.seq) for r in records] == sequences
    # a second round trip through the set itself
    again = read_sequences(write_fasta(back, tmp_path / "again.fa"))
    assert (again.sequences, again.ids, again.descriptions) == (sequences, ids, descriptions)


def test_default_ids_and_str_path(tmp_path: Path) -> None:
    path = write_fasta(["ACD", Seq("EFG")], str(tmp_path / "plain.faa"))
    back = read_sequences(str(path))
    assert back.ids == ["seq0", "seq1"] and back.descriptions == ["", ""]
    assert back.sequences == ["ACD", "EFG"]
    assert path.read_text() == ">seq0\nACD\n>seq1\nEFG\n"
    assert os.stat(path).st_mode & 0o777 == 0o644


def test_records_and_mixed_inputs() -> None:
    records = [
        SeqRecord(Seq("MKV"), id="r1", description="first record"),
        SeqRecord(Seq("GGG"), id="r2", description="r2 second record"),  # as SeqIO.parse gives it
        SeqRecord(Seq("WW"), id="r3", description=""),
    ]
    data = read_sequences([*records, "ACD", Seq("EF")])
    assert data.sequences == ["MKV", "GGG", "WW", "ACD", "EF"]
    assert data.ids == ["r1", "r2", "r3", "seq3", "seq4"]
    assert data.descriptions == ["first record", "second record", "", "", ""]
    assert isinstance(data, SequenceSet) and len(data) == 5
    assert read_sequences(("ACD",)).sequences == ["ACD"]
    assert read_sequences(data) is not data and read_sequences(data) == data


def test_any_file_that_parses_as_fasta(tmp_path: Path) -> None:
    path = tmp_path / "sequences"  # no suffix: the content decides
    path.write_text(">a one\nAC\nDE\n\n>b\nFG\n")
    data = read_sequences(path)
    assert data.sequences == ["ACDE", "FG"] and data.ids == ["a", "b"] and data.descriptions == ["one", ""]
    # the adapters take the same inputs
    assert ProteinAdapter().tokenize(path).tolist() == [[1, 2, 3, 4], [5, 6, 0, 0]]


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"sequence file not found: '.*missing\.fasta'"):
        read_sequences(tmp_path / "missing.fasta")
    with pytest.raises(FileNotFoundError, match=r"missing\.fa"):
        read_sequences("data/missing.fa")
    with pytest.raises(TypeError, match=r"single string 'MKVLAAG' that is not an existing file; .* list"):
        read_sequences("MKVLAAG")
    table = tmp_path / "table.csv"
    table.write_text("sequence,label\nACD,1\n")
    with pytest.raises(ValueError, match=r"table\.csv' does not parse as FASTA.*read_labelled_csv"):
        read_sequences(table)
    empty = tmp_path / "empty.fasta"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"empty\.fasta' holds no FASTA records"):
        read_sequences(empty)
    binary = tmp_path / "binary.fa"
    binary.write_bytes(b">x\n\xff\xfe\x00\x81\n")
    with pytest.raises(ValueError, match=r"binary\.fa' does not parse as FASTA"):
        read_sequences(binary)
    with pytest.raises(ValueError, match="is a folder"):
        read_sequences(tmp_path)
    with pytest.raises(TypeError, match=r"item 1 is a int; expected str, Bio.Seq.Seq"):
        read_sequences(["ACD", 5])
    with pytest.raises(TypeError, match="got a single SeqRecord"):
        read_sequences(SeqRecord(Seq("ACD"), id="x"))
    with pytest.raises(ValueError, match="no sequences"):
        read_sequences([])
    with pytest.raises(ValueError, match=r"record 0 \('u'\) has an undefined sequence"):
        read_sequences([SeqRecord(Seq(None, length=5), id="u")])


def test_write_refuses_what_fasta_cannot_hold(tmp_path: Path) -> None:
    target = tmp_path / "x.fasta"
    with pytest.raises(ValueError, match=r"id 0 must be a non-empty string without whitespace, got 'a b'"):
        write_fasta(["ACD"], target, ids=["a b"])
    with pytest.raises(ValueError, match=r"description 0 must be one line"):
        write_fasta(["ACD"], target, descriptions=["two\nlines"])
    with pytest.raises(ValueError, match=r"sequence 0 \('seq0'\) holds ' ' at position 3"):
        write_fasta(["AC D"], target)
    with pytest.raises(ValueError, match="got 2 ids for 1 sequences"):
        write_fasta(["ACD"], target, ids=["a", "b"])
    with pytest.raises(FileNotFoundError, match=r"folder '.*nowhere' does not exist"):
        write_fasta(["ACD"], tmp_path / "nowhere" / "x.fasta")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.fasta"
    write_fasta(["AAA"], target, ids=["old"])
    before = target.read_text()

    def broken_write(*args: object, **kwargs: object) -> int:
        raise OSError("disk full")

    monkeypatch.setattr(SeqIO, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        write_fasta(["CCC"], target, ids=["new"])
    assert target.read_text() == before  # the old file survives whole
    assert [p.name for p in tmp_path.iterdir()] == ["x.fasta"]  # and no temporary file is left
    monkeypatch.undo()
    write_fasta(["CCC"], target, ids=["new"])
    assert target.read_text() == ">new\nCCC\n"


def test_read_labelled_csv(tmp_path: Path) -> None:
    path = tmp_path / "mine.csv"
    path.write_text("name,sequence,active\na,NA,1\nb,acdk,0\nc,MKV,1\n")
    sequences, labels = read_labelled_csv(path, "sequence", "active")
    assert sequences == ["NA", "acdk", "MKV"]  # "NA" is a peptide, not a missing value; case kept
    assert labels.tolist() == [1, 0, 1] and labels.dtype.kind == "i"
    named = tmp_path / "named.tsv"
    named.write_text("seq\tclass\nACD\tsoluble\nEFG\tinsoluble\n")
    _, classes = read_labelled_csv(named, "seq", "class", sep="\t")
    assert classes.tolist() == ["soluble", "insoluble"]
    columns = r"\['name', 'sequence', 'active'\]"
    with pytest.raises(ValueError, match=rf"has no column 'label'; its columns are {columns}"):
        read_labelled_csv(path, "sequence", "label")
    path.write_text("sequence,active\nACD,1\n,0\n")
    with pytest.raises(ValueError, match=r"column 'sequence' is empty in 1 row\(s\), first at data row 2"):
        read_labelled_csv(path, "sequence", "active")
    with pytest.raises(FileNotFoundError, match="CSV file not found"):
        read_labelled_csv(tmp_path / "none.csv", "sequence", "active")
    assert isinstance(labels, np.ndarray)
