"""The end-to-end benchmark's README rows judge each figure against its own target, from whatever parts ran."""

from __future__ import annotations

from benchmarks.e2e_bench import ORIGINAL, growth_exponent, marginal, rows

BASE = {"blocks": 8, "rows": 5000, "features": 20, "actor_blocks_per_s": 2.0, "floor_blocks_per_s": 2.5,
        "ratio": 1.25}


def verdicts(results: dict) -> dict[str, bool | None]:
    return {row.figure: row.met for row in rows(results)}


def test_only_the_actor_row_when_the_run_figures_were_skipped() -> None:
    assert list(verdicts(BASE).values()) == [True]


def test_each_run_figure_is_judged_against_its_own_target() -> None:
    results = {**BASE, "run_marginal_s": 0.2, "run_marginal_n": 6, "minimal_s_per_block": 0.1,
               "same_s_per_block": 0.16, "run_vs_minimal": 2.0, "run_vs_same": 1.25,
               "run_summary_s": 9.0, "run_exit_s": 10.0, "ray_floor_s": 6.0,
               "joined_summary_s": 3.0, "joined_mode": "joined",
               "backfill_blocks": 1000, "backfill_s": 400.0, "backfill_marginal_s": 0.3, "backfill_expected_s": 310.0,
               "backfill_ratio": 400 / 310,
               "growth_sizes": [5, 10, 20], "growth_own_s": [6.0, 9.0, 30.0], "growth_joined_s": [3.0, 5.0, 12.0]}
    met = list(verdicts(results).values())
    # actor, / minimal, / same-signals, <= 5 s (missed), <= 2x, joined (info), backfill, growth own, growth joined
    assert met == [True, True, True, False, True, None, True, True, None]


def test_the_growth_target_is_missed_when_b10_is_not_faster_than_the_original() -> None:
    results = {**BASE, "growth_sizes": [5, 10, 20], "growth_own_s": [6.0, ORIGINAL[10] + 1, 30.0]}
    assert list(verdicts(results).values())[-1] is False
    results["growth_own_s"] = [3 * ORIGINAL[5] + 1, 9.0, 30.0]  # B = 5 beyond 3x
    assert list(verdicts(results).values())[-1] is False


def test_growth_sizes_the_original_was_not_measured_at_are_information_only() -> None:
    results = {**BASE, "growth_sizes": [2, 4], "growth_own_s": [20.0, 21.0]}
    assert list(verdicts(results).values())[-1] is None


def test_the_marginal_cost_skips_the_first_two_files_and_files_that_ran_a_round() -> None:
    run = {"lines": [(10.0, {"rounds": [{"round": "r1"}]}), (13.0, {"rounds": []}), (13.5, {"rounds": []}),
                     (14.1, {"rounds": []}), (20.0, {"rounds": [{"round": "r2"}]}), (20.4, {"rounds": []}),
                     (21.0, {"summary": {}})]}
    per_block, n = marginal(run)
    assert n == 3 and abs(per_block - (0.5 + 0.6 + 0.4) / 3) < 1e-12


def test_the_growth_exponent_of_a_power_law_is_its_power() -> None:
    assert abs(growth_exponent([5, 10, 20], [2.1, 10.3, 40.0]) - 2.13) < 0.01
