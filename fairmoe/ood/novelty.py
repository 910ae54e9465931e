"""Feature-space novelty: a Mahalanobis distance per layer, standardised, combined by the maximum.

Each layer gets a Gaussian fitted on reference scans (mean, Ledoit-Wolf shrunk covariance: with a
few thousand scans and up to 2x768 dimensions the sample covariance is ill-conditioned). A
scan's distance at a layer is standardised by the distances of held-out calibration scans
(a robust location and spread, both linear in the scan's measured detail: ``acquisition``), so
that layers of different widths and spreads, and scans of different crispness, become
comparable; the novelty score is the maximum over layers. Several detectors at different depths
are more robust than one at the output (Anthony & Kamnitsas 2023), and distances in feature space
beat the classifier's confidence at telling unseen inputs apart (Lee et al. 2018).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from fairmoe.ood.acquisition import Standardisation

__all__ = ["LayerGaussian", "combine", "standardised_distances"]


@dataclass(frozen=True)
class LayerGaussian:
    """Reference Gaussian of one layer's features and the calibration distances' standardisation."""

    name: str
    mean: np.ndarray  # (D,)
    precision: np.ndarray  # (D, D) inverse of the shrunk covariance
    shrinkage: float  # Ledoit-Wolf's weight on the scaled identity
    standard: Standardisation = field(default_factory=Standardisation)

    @classmethod
    def fit(cls, name: str, features: np.ndarray) -> LayerGaussian:
        """Mean and shrunk precision of reference features (N, D)."""
        if features.shape[0] < 2:
            raise ValueError(f"layer {name}: need at least 2 reference scans")
        from sklearn.covariance import LedoitWolf  # fitting only: ~0.5 s to import at start

        lw = LedoitWolf(assume_centered=False).fit(features)
        return cls(name, lw.location_.copy(), lw.precision_.copy(), float(lw.shrinkage_))

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance (N,) of features (N, D) from the reference mean."""
        d = np.asarray(features, dtype=np.float64) - self.mean
        return np.sqrt(np.maximum(np.einsum("nd,de,ne->n", d, self.precision, d), 0.0))

    def calibrated(
        self, features: np.ndarray, covariate: np.ndarray | None = None
    ) -> LayerGaussian:
        """This layer with its standardisation fitted on calibration features (N, D) and their
        detail covariate (N,) (``acquisition.DetailScale.covariate``) when given."""
        return replace(self, standard=Standardisation.fit(self.distance(features), covariate))

    def standardised(self, features: np.ndarray, covariate: np.ndarray | None = None) -> np.ndarray:
        """~N(0, 1)-scaled scores (N,), 0 for a typical scan of that detail."""
        return self.standard(self.distance(features), covariate)


def standardised_distances(
    layers: Mapping[str, LayerGaussian],
    features: Mapping[str, np.ndarray],
    covariate: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Standardised distance (N,) per layer."""
    return {name: g.standardised(features[name], covariate) for name, g in layers.items()}


def combine(scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """The novelty score (N,): the largest standardised distance over layers."""
    return np.max(np.stack(list(scores.values())), axis=0)
