"""benchmarks/context_f1.py: a run changes only its setting's, its corpus's and its seed's keys of the
recipe, and the table gives each setting's seeds, mean and spread."""

from __future__ import annotations

import yaml

from benchmarks.context_f1 import CORPORA, SETTINGS, changed, run_changes, table
from modelzoo.tools.quickstart import DEFAULT_CONFIG


def test_a_setting_changes_its_keys_and_nothing_else(tmp_path):
    target = changed(DEFAULT_CONFIG, run_changes("conll2003", "context64", 3), tmp_path / "p.yaml")
    before = yaml.safe_load(DEFAULT_CONFIG.read_text())
    after = yaml.safe_load(target.read_text())
    assert after["train_input"]["context_tokens"] == after["eval_input"]["context_tokens"] == 64
    assert after["train_input"]["batch_size"] == 38 and after["runconfig"]["seed"] == 3
    for section in before:
        for key, value in before[section].items():
            if f"{section}.{key}" not in {"train_input.batch_size", "runconfig.seed", "train_input.shuffle_seed"}:
                assert after[section][key] == value, f"{section}.{key}"


def test_every_bc5cdr_setting_runs_the_recipes_schedule_to_its_end(tmp_path):
    """A setting that takes more rows a batch keeps the steps (run.py refuses a schedule that does not
    span the run), so every setting sees the same learning rates over ~28 sentences a step."""
    recipe = CORPORA["bc5cdr-chem"]
    schedule = sum(phase["total_iters"] for phase in yaml.safe_load(recipe.config.read_text())["optimizer"]["learning_rate"])
    for setting in SETTINGS:
        after = yaml.safe_load(changed(recipe.config, run_changes("bc5cdr-chem", setting, 2), tmp_path / "p.yaml").read_text())
        assert after["runconfig"]["max_steps"] == schedule and after["runconfig"]["num_epochs"] is None
        assert after["train_input"]["shuffle_seed"] == 2
    assert [run_changes("bc5cdr-chem", setting, 1)["train_input.batch_size"] for setting in ("context16", "context64")] == [16, 28]


def test_the_table_gives_mean_and_spread_per_setting():
    results = [
        {"setting": "none", "seed": 2, "dev": 0.90, "test": 0.86, "train_seconds": 300},
        {"setting": "none", "seed": 1, "dev": 0.91, "test": 0.87, "train_seconds": 310},
        {"setting": "context16", "seed": 1, "dev": 0.92, "test": 0.88, "train_seconds": 600},
    ]
    lines = table(results, ["none", "context16", "context64"]).splitlines()
    assert len(lines) == 3  # a header and one line per setting that has runs
    assert lines[1].split()[:2] == ["none", "2"]
    assert "0.9100 0.9000 / 0.9050 (0.0100)" in lines[1] and "0.8700 0.8600 / 0.8650 (0.0100)" in lines[1]
    assert "310 300" in lines[1] and "0.9200 / 0.9200 (0.0000)" in lines[2]
