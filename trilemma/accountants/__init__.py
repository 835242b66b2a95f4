"""Privacy accounting: central DP (RDP/PLD via dp-accounting), calibration, per-worker DP for
D-SGD, and SecLDP for decentralized learning with correlated noise on graphs."""

from trilemma.accountants.calibration import (
    calibrate_dpsgd,
    calibrate_dpsgd_steps,
    calibrate_gaussian,
    calibrate_noise,
)
from trilemma.accountants.central import (
    dpsgd_delta,
    dpsgd_epsilon,
    gaussian_epsilon,
    get_delta,
    get_epsilon,
    laplace_epsilon,
    make_accountant,
    sgd_event,
)
from trilemma.accountants.distributed import worker_epsilon, worker_noise_std
from trilemma.accountants.graphs import Topology, as_topology, parse_graph_spec
from trilemma.accountants.secldp import SecLDPAccountant, SecLDPDpEvent, secldp_epsilon
from trilemma.accountants.secldp_calibration import calibrate_sigma_cor
from trilemma.accountants.secldp_report import SecLDPReport, secldp_report

__all__ = [
    "SecLDPAccountant",
    "SecLDPDpEvent",
    "SecLDPReport",
    "Topology",
    "as_topology",
    "calibrate_dpsgd",
    "calibrate_dpsgd_steps",
    "calibrate_gaussian",
    "calibrate_noise",
    "calibrate_sigma_cor",
    "dpsgd_delta",
    "dpsgd_epsilon",
    "gaussian_epsilon",
    "get_delta",
    "get_epsilon",
    "laplace_epsilon",
    "make_accountant",
    "parse_graph_spec",
    "secldp_epsilon",
    "secldp_report",
    "sgd_event",
    "worker_epsilon",
    "worker_noise_std",
]
