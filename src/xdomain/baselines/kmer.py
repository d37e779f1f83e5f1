"""The k-mer baseline for sequence classification: amino-acid k-mer frequencies and logistic regression.

The honest reference beside every reprogrammed protein or peptide classifier (R2DL, Vinod, Chen & Das,
Digital Discovery 2025, compares against such sequence-composition models): if a frozen language model
reprogrammed with a vocabulary map does not beat it, the reprogramming has not earned its cost.

Features: the counts of every 1..k-mer of the upper-cased sequence (scikit-learn's
``CountVectorizer(analyzer="char", ngram_range=(1, k), lowercase=False)``, vocabulary learned in
``fit``), divided by the sequence's length, i.e. k-mer frequencies. Length normalisation, not tf-idf:
it puts a 10-residue and a 50-residue peptide on one scale while keeping composition readable, and the
L2 penalty of the logistic regression already shrinks the weights of rare k-mers that idf would boost.
Sequences are cleaned like :func:`xdomain.adapters.protein.encode_proteins` cleans them (surrounding
whitespace and a trailing ``*`` dropped, letters checked), so a stray character is an error, not a
feature.

Shapes:
    - input: ``N`` sequences (a list of str / ``Seq`` / ``SeqRecord``, or a FASTA path)
    - features: ``(N, n_kmers)`` sparse; output: labels ``(N,)``, probabilities ``(N, n_classes)``
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from xdomain.adapters.protein import clean_sequence
from xdomain.datasets.sequences import read_sequences


class KmerLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression on length-normalised 1..k-mer counts of protein sequences.

    Not a reprogramming model: a baseline with no term of y = O(f(I(x))); it has no frozen backbone.

    Args:
        k: the longest k-mer counted (all 1..k-mers are features); 20 + 400 + 8,000 features at k = 3.
        C: inverse L2 regularisation strength of the logistic regression.
        max_iter: iterations of the lbfgs solver.
    """

    def __init__(self, k: int = 3, C: float = 1.0, max_iter: int = 2000) -> None:
        self.k = k
        self.C = C
        self.max_iter = max_iter

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

    def _check_params(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, (int, np.integer)) or self.k < 1:
            raise ValueError(f"k must be a positive int, got {self.k!r}")
        if isinstance(self.C, bool) or not isinstance(self.C, (int, float, np.number)) or not self.C > 0:
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        max_iter = self.max_iter
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
            raise ValueError(f"max_iter must be a positive int, got {self.max_iter!r}")

    @staticmethod
    def _sequences(X: Any) -> list[str]:
        return [clean_sequence(s, i) for i, s in enumerate(read_sequences(X).sequences)]

    def _features(self, sequences: list[str]) -> Any:
        counts = self.vectorizer_.transform(sequences)  # (N, n_kmers) sparse
        lengths = np.asarray([len(s) for s in sequences], dtype=np.float64)
        return counts.multiply(1.0 / lengths[:, None]).tocsr()

    def fit(self, X: Any, y: Any) -> KmerLogisticRegression:
        self._check_params()
        sequences = self._sequences(X)
        target = np.asarray(y)
        if target.ndim != 1:
            raise ValueError(f"y must be one label a sequence, shape (N,), got shape {target.shape}")
        if len(target) != len(sequences):
            raise ValueError(
                f"got {len(sequences)} sequences but {len(target)} labels; expected one label a sequence"
            )
        check_classification_targets(target)
        self.vectorizer_ = CountVectorizer(
            analyzer="char", ngram_range=(1, int(self.k)), lowercase=False, dtype=np.float64
        ).fit(sequences)
        self.model_ = LogisticRegression(C=float(self.C), max_iter=int(self.max_iter))
        self.model_.fit(self._features(sequences), target)
        self.classes_ = self.model_.classes_
        return self

    def transform_features(self, X: Any) -> Any:
        """The length-normalised k-mer matrix ``(N, n_kmers)`` (sparse) the classifier sees."""
        check_is_fitted(self, "model_")
        return self._features(self._sequences(X))

    def decision_function(self, X: Any) -> np.ndarray:
        features = self.transform_features(X)
        return np.asarray(self.model_.decision_function(features))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(N, n_classes)``, columns in the order of ``classes_``."""
        features = self.transform_features(X)
        return np.asarray(self.model_.predict_proba(features))

    def predict(self, X: Any) -> np.ndarray:
        features = self.transform_features(X)
        return np.asarray(self.model_.predict(features))

    def kmers(self) -> list[str]:
        """The k-mers learned in ``fit``, in feature order."""
        check_is_fitted(self, "model_")
        return [str(t) for t in self.vectorizer_.get_feature_names_out()]


__all__ = ["KmerLogisticRegression"]
