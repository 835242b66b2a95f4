"""The command line mirrors the API, prints tables or JSON, and exits 2 on bad input."""

import json
import subprocess
import sys

import pytest

from trilemma.cli import main


def _reject(constant):
    raise ValueError(f"{constant} is not JSON (RFC 8259)")


def strict_json(text):
    """Parse ``text`` as strict JSON: NaN and ±Infinity are refused, as by most parsers."""
    return json.loads(text, parse_constant=_reject)


# the DECOR reference's ring-16 setting
DECOR_RING = (
    "account",
    "secldp",
    "--graph",
    "ring:16",
    "--sigma",
    "17.827",
    "--sigma-cor",
    "188",
    "--steps",
    "3500",
    "--delta",
    "1e-5",
)


def run_json(capsys, *argv):
    assert main([*argv, "--json"]) == 0
    return strict_json(capsys.readouterr().out)


def test_dpsgd_json_matches_reference(capsys):
    rows = run_json(
        capsys,
        "account",
        "dpsgd",
        "--sigma",
        "1.1",
        "--q",
        "0.01",
        "--steps",
        "10000",
        "--delta",
        "1e-5",
    )
    values = {row["method"]: row["epsilon"] for row in rows}
    assert abs(values["rdp"] - 5.632011) < 1e-6 and abs(values["pld"] - 5.192620) < 1e-6


def test_json_is_strict_with_null_for_non_finite_numbers(capsys):
    """Every command's --json output parses with a strict parser; a bound that does not apply
    (a colluder-isolated worst node has no spectral bound) is null, not NaN."""
    worst = run_json(
        capsys,
        *DECOR_RING,
        "--colluders",
        "0,8",
    )[0]
    assert worst["spectral_bound"] is None and worst["epsilon_rdp"] > 0
    assert run_json(capsys, "demo")
    assert run_json(capsys, "reproduce", "--list")
    assert run_json(capsys, "check", "trilemma", "--budget", "5")
    assert run_json(
        capsys,
        "account",
        "worker",
        "--epsilon",
        "1",
        "--delta",
        "1e-5",
        "--steps",
        "100",
        "--local-size",
        "500",
        "--batch-size",
        "25",
    )
    with pytest.raises(ValueError, match="NaN is not JSON"):
        strict_json('{"x": NaN}')


def test_gaussian_table(capsys):
    assert (
        main(["account", "gaussian", "--sigma", "1", "--delta", "1e-5", "--method", "analytic"])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == [
        "mechanism",
        "method",
        "noise_multiplier",
        "compositions",
        "delta",
        "epsilon",
    ]
    assert out[2].split()[-1] == "4.37718"


def test_secldp_with_colluders_and_bounds(capsys):
    rows = run_json(
        capsys,
        *DECOR_RING,
        "--colluders",
        "0,8",
        "--method",
        "classic",
    )
    worst, *components = rows
    alone = run_json(
        capsys,
        *DECOR_RING,
        "--method",
        "classic",
    )[0]
    assert abs(alone["epsilon_classic"] - 10.292885976685458) < 1e-9
    assert worst["epsilon_classic"] > alone["epsilon_classic"]
    assert [c["nodes"] for c in components] == [7, 7]  # 0 and 8 cut the ring in two paths
    for component in components:
        assert component["max_inv_var"] <= component["spectral_bound"]


def test_per_node_rows(capsys):
    rows = run_json(
        capsys,
        "account",
        "secldp",
        "--graph",
        "path:4",
        "--sigma",
        "1",
        "--sigma-cor",
        "1",
        "--steps",
        "5",
        "--delta",
        "1e-5",
        "--per-node",
    )
    assert [row["node"] for row in rows] == [0, 1, 2, 3]
    # the ends of a path have the fewest secrets, so the largest inverse variance
    assert rows[0]["inverse_variance"] > rows[1]["inverse_variance"]


def test_calibrations(capsys):
    sigma = run_json(
        capsys,
        "account",
        "calibrate",
        "dpsgd",
        "--epsilon",
        "3",
        "--q",
        "0.01",
        "--steps",
        "1000",
        "--delta",
        "1e-5",
    )[0]["noise_multiplier"]
    rows = run_json(
        capsys,
        "account",
        "dpsgd",
        "--sigma",
        str(sigma),
        "--q",
        "0.01",
        "--steps",
        "1000",
        "--delta",
        "1e-5",
        "--method",
        "rdp",
    )
    assert 3.0 - 1e-3 <= rows[0]["epsilon"] <= 3.0
    sigma_cor = run_json(
        capsys,
        "account",
        "calibrate",
        "secldp",
        "--graph",
        "ring:16",
        "--epsilon",
        "10.292886",
        "--sigma",
        "17.827",
        "--steps",
        "3500",
        "--delta",
        "1e-5",
        "--method",
        "classic",
    )[0]["sigma_cor"]
    assert abs(sigma_cor - 188.0) < 1e-3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            [
                "account",
                "dpsgd",
                "--sigma",
                "-1",
                "--q",
                "0.01",
                "--steps",
                "10",
                "--delta",
                "1e-5",
            ],
            "noise_multiplier=-1.0 must lie in (0, inf)",
        ),
        (
            ["account", "dpsgd", "--sigma", "1", "--q", "0.01", "--steps", "10", "--delta", "nan"],
            "delta=nan must lie in (0, 1)",
        ),
        (
            [
                "account",
                "secldp",
                "--graph",
                "ring:16",
                "--sigma",
                "1",
                "--sigma-cor",
                "1",
                "--steps",
                "10",
                "--delta",
                "1e-5",
                "--colluders",
                "99",
            ],
            "colluders contains 99",
        ),
        (
            [
                "account",
                "secldp",
                "--graph",
                "moebius:3",
                "--sigma",
                "1",
                "--sigma-cor",
                "1",
                "--steps",
                "10",
                "--delta",
                "1e-5",
            ],
            "unknown graph spec 'moebius:3'",
        ),
    ],
)
def test_bad_input_exits_2_without_traceback(argv, message):
    result = subprocess.run(
        [sys.executable, "-m", "trilemma", *argv], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_calibration_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["account", "calibrate", "dpsgd", "--epsilon", "1", "--delta", "1e-5"])
    assert exit_info.value.code == 2
    assert "needs --q, --steps" in capsys.readouterr().err


def test_run_trains_a_config_file_with_overrides_and_resumes(capsys, tmp_path):
    config = tmp_path / "small.toml"
    config.write_text('name = "small"\nworkers = 4\nper_worker = 20\nsteps = 4\nf = 1\n')
    common = ["run", str(config), "--out", str(tmp_path), "--no-progress"]
    rows = run_json(capsys, *common, "--set", "log_every=2", "--set", "batch_size=none")
    assert [row["step"] for row in rows] == [4] and 0 <= rows[0]["test_accuracy"] <= 1
    logged = (tmp_path / "small" / "metrics.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in logged[1:]] == ["0", "2", "4"]
    assert main(common) == 2
    assert "already holds a run" in capsys.readouterr().err
    longer = run_json(capsys, *common, "--set", "log_every=2", "--set", "steps=6", "--resume")
    assert [row["step"] for row in longer] == [6]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "bogus=1"], "unknown run config keys ['bogus']"),
        (["--set", "rule=median"], "rule='median'"),
        (["--set", "lr=0"], "lr=0 must lie in (0, inf)"),
        (["--set", "f"], "--set 'f' must look like key=value"),
        (["--nproc", "0"], "--nproc=0 must be an integer in [1, inf)"),
        (["--nproc", "11"], "--nproc=11 exceeds the 10 honest workers"),
    ],
)
def test_run_refuses_bad_configs(capsys, argv, message):
    assert main(["run", *argv]) == 2
    assert message in capsys.readouterr().err
