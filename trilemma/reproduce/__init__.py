"""One command per theorem figure: tidy data (CSV), the plot (PNG) and meta.json.

Importing the package registers every figure module in :data:`FIGURES`.
"""

from trilemma._files import read_csv
from trilemma.reproduce import (
    accountants_dpsgd,
    decor_privacy_utility,
    gb_breakdown,
    gb_predicted,
    gb_ridge,
    gb_trajectories,
    podc_batch_size,
    secldp_graphs,
    trilemma_byzantine,
    trilemma_dimension,
    trilemma_epsilon,
    trilemma_records,
    trilemma_safe_dshb,
    trilemma_tracing,
)
from trilemma.reproduce._figure import (
    FIGURES,
    SIZES,
    Figure,
    FigureData,
    Settings,
    available,
    register,
    reproduce,
    write_index,
)

__all__ = [
    "FIGURES",
    "SIZES",
    "Figure",
    "FigureData",
    "Settings",
    "accountants_dpsgd",
    "available",
    "decor_privacy_utility",
    "gb_breakdown",
    "gb_predicted",
    "gb_ridge",
    "gb_trajectories",
    "podc_batch_size",
    "read_csv",
    "register",
    "reproduce",
    "secldp_graphs",
    "trilemma_byzantine",
    "trilemma_dimension",
    "trilemma_epsilon",
    "trilemma_records",
    "trilemma_safe_dshb",
    "trilemma_tracing",
    "write_index",
]
