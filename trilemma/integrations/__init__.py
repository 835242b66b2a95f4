"""Adapters into the tools practitioners train with, each behind an optional extra.

* :mod:`trilemma.integrations.flower` (``pip install 'trilemma[flower]'``): a Flower strategy
  that aggregates the clients' updates with any trilemma rule or composition, never produces a
  non-finite model from garbage updates, logs the robustness ratio κ̂ paid when the honest
  clients are known, and can add per-client Gaussian noise calibrated for a per-client (ε, δ).
* :mod:`trilemma.integrations.opacus` (``pip install 'trilemma[opacus]'``): an Opacus accountant
  backed by dp-accounting (RDP or PLD) through :mod:`trilemma.accountants`, and a
  ``PrivacyEngine`` whose calibration to a target ε never overshoots.

Nothing else in trilemma imports these modules; importing one without its extra raises an
``ImportError`` that names the extra.
"""

__all__: list[str] = []
