# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-output
EVAL_DIR ?= evaluation-work
MODEL_DIR ?= model-work
# Real maps are never bundled: tests, `make evaluate` and `demo --dataset` read them here (CI keeps ../shared beside the clone).
REAL_DATA ?= $(or $(DEFOSCAN_REAL_DATA),../shared/data/real)

.PHONY: demo test chromium bench evaluate evaluate-cities model lint clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first: the CPU build lies on disk; anything later asking for torch must not pull a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/defoscan demo --out $(DEMO_OUT)

test: $(STAMP) chromium
	$(PY) -m pytest -q

# The report's browser test (tests/test_report_browser.py) opens report.html in Debian's chromium, driven by
# Playwright; installed here when missing (never a browser downloaded by Playwright). sudo only when not root.
chromium:
	@command -v chromium >/dev/null || { \
		sudo=$$(test "$$(id -u)" -eq 0 || echo sudo); \
		$$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }

bench: $(STAMP)
	$(PY) benchmarks/run.py

# The synthetic data's profiles, fitted to the real maps of $(REAL_DATA): Kirishima at 50 m and Ustica's two EGMS
# tracks, in one list (`make evaluate`'s scenes and `make model`'s training data are drawn from them).
%/fitted.json: $(STAMP)
	mkdir -p $*
	test -d $(REAL_DATA) || { echo "make: no real data in $(REAL_DATA) (set REAL_DATA=DIR)" >&2; exit 2; }
	$(VENV)/bin/defoscan synth --fit $(REAL_DATA)/01_kirishima_mintpy_alos2/velocity.h5 --cell-size 50 --out $*/kirishima50.json
	$(VENV)/bin/defoscan synth --fit $(REAL_DATA)/03_egms_ustica_italy/EGMS_L2b_*.zip --out $*/ustica.json
	$(PY) -c "import json, sys; d = sys.argv[1]; json.dump([json.load(open(d + '/kirishima50.json'))] + json.load(open(d + '/ustica.json')), open(d + '/fitted.json', 'w'))" $*

# The scene benchmark (docs/EVALUATION.md): profiles fitted to the real maps in $(REAL_DATA), the scene suite drawn from
# them, every detector, baseline and ablation run and scored; the results table rewritten in the docs. Resumable.
evaluate: $(STAMP) $(EVAL_DIR)/fitted.json
	test -d $(REAL_DATA) || { echo "make evaluate: no real data in $(REAL_DATA) (set REAL_DATA=DIR)" >&2; exit 2; }
	# Skipped when the scenes there were made with these options by this code (synth --scenes keeps a stamp).
	$(VENV)/bin/defoscan synth --scenes --n 16 --seed 7 --shape 600 --per-kind 2 \
		--positive-fraction 0.75 --profile $(EVAL_DIR)/fitted.json --out $(EVAL_DIR)/scenes
	$(VENV)/bin/defoscan evaluate-scenes $(EVAL_DIR)/scenes --out $(EVAL_DIR)/runs --real-data $(REAL_DATA) --table docs/EVALUATION.md
	# Maps the detector was not built from (issue 18), every row at its defaults, baselines tuned on validation.
	$(PY) benchmarks/real_maps.py --data $(REAL_DATA) --work $(EVAL_DIR)/real-maps --table docs/EVALUATION.md
	$(PY) benchmarks/held_out.py --benchmark tay --data $(REAL_DATA) --work $(EVAL_DIR)/tay --table docs/EVALUATION.md
	$(PY) benchmarks/held_out.py --benchmark ood --work $(EVAL_DIR)/ood --table docs/EVALUATION.md
	$(PY) benchmarks/reliability.py --data $(REAL_DATA) --work $(EVAL_DIR) --table docs/EVALUATION.md

# The shipped model retrained from nothing (docs/MODEL.md, "Training"): profiles fitted to the real maps, four
# synthetic datasets, gap filling and training, about 2 hours on 2 cores. Every step resumes when run again (a dataset
# from its shards, the filling from its cache, training from its checkpoint); the model is written to
# $(MODEL_DIR)/defoscan-compact.safetensors, for the user to copy over src/defoscan/data/model/ after judging it.
model: $(STAMP) $(MODEL_DIR)/fitted.json
	test -d $(REAL_DATA) || { echo "make model: no real data in $(REAL_DATA) (set REAL_DATA=DIR)" >&2; exit 2; }
	$(VENV)/bin/defoscan synth --n 16000 --seed 11 --profile $(MODEL_DIR)/fitted.json --out $(MODEL_DIR)/fit-train
	$(VENV)/bin/defoscan synth --n 16000 --seed 14 --profile $(MODEL_DIR)/fitted.json --out $(MODEL_DIR)/fit-train2
	$(VENV)/bin/defoscan synth --n 2000 --seed 12 --profile $(MODEL_DIR)/fitted.json --out $(MODEL_DIR)/fit-val
	$(VENV)/bin/defoscan synth --n 4000 --seed 13 --profile $(MODEL_DIR)/fitted.json --out $(MODEL_DIR)/fit-test
	test -f $(MODEL_DIR)/defoscan-compact.safetensors || $(VENV)/bin/defoscan train $(MODEL_DIR)/fit-train $(MODEL_DIR)/fit-train2 \
		--val $(MODEL_DIR)/fit-val --fcn --fill --max-train 12000 --epochs 12 --out $(MODEL_DIR)/defoscan-compact.safetensors

# Every detector on every whole real city map of Tay et al. (2022): no failure, attributes consistent (issue 16).
# About 30 minutes: apart from `make evaluate`, which must stay under an hour.
evaluate-cities: $(STAMP)
	$(PY) benchmarks/tay_cities.py --data $(REAL_DATA)/10_tay_city_velocity

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) $(DEMO_OUT) $(EVAL_DIR) $(MODEL_DIR) build src/*.egg-info .pytest_cache
