# cs-bench: `make tables` (the main job) and `make test` (the test suite) are the README's
# two commands; each installs what it needs first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Benchmark images: ../shared/data when present (development, CI), else the per-user cache,
# where cs-bench downloads and verifies them.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/SHA256SUMS),)
export CS_BENCH_DATA ?= $(SHARED_DATA)
endif

# The authors' released ISTA-Net / ISTA-Net+ (../shared/release when present, else GitHub).
SHARED_RELEASE := $(abspath ../shared/release)
ifneq ($(wildcard $(SHARED_RELEASE)/SHA256SUMS),)
export CS_BENCH_RELEASE ?= $(SHARED_RELEASE)
endif

# One BLAS thread per process: numpy's QR (make_phi) takes 22 s with OpenBLAS threads fighting
# torch's on 2 cores and 0.7 s without; the runner parallelises over images instead (--jobs).
export OPENBLAS_NUM_THREADS ?= 1

# D-AMP and NLR-CS cost ~150 of the ~160 CPU-minutes a cold `make tables` needs on Set11
# (80 minutes on 2 cores). `make tables` takes their rows from the committed
# results/all_runs.csv where those were computed by the same code (the `code` column: a hash
# of the solver's source and the harness core; any edit recomputes them) and computes the
# rest; `make tables-full` computes everything.
SLOW ?= d-amp,nlr-cs

.PHONY: install release test tables tables-full beyond beyond-slow train train-tier2 save-training lint clean-cache help

help:
	@echo "make tables   regenerate the paper's tables and figures into results/"
	@echo "make test     run the test suite"
	@echo "make tables-full  the same, recomputing D-AMP and NLR-CS too (~80 min on 2 cores)"
	@echo "make beyond   results/noise.md and datasets.md, computing what is missing (hours)"
	@echo "make beyond-slow  the same with D-AMP and NLR-CS (many hours)"
	@echo "make bench    speed benchmark into results/bench.md"
	@echo "make train    train the model zoo (long; resumable)"
	@echo "make train-tier2  train the ablation models of Tables 1, 3 and Fig. 6"
	@echo "make save-training  stage the runs' logs and unfinished runs' checkpoints for a commit"
	@echo "make lint     ruff"

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[bm3d,dev,dask]'
	@touch $@

test: install
	$(BIN)/python -m pytest

# The release rows need `cs-bench weights fetch release`; offline and without a copy, the
# tables show them as "not fetched" and everything else is still made.
release: install
	$(BIN)/cs-bench weights fetch release || echo "the authors' release is not fetched: its rows show as 'not fetched'"

tables: install release
	$(BIN)/cs-bench tables --reuse $(SLOW)
	$(BIN)/cs-bench report

tables-full: install release
	$(BIN)/cs-bench tables
	$(BIN)/cs-bench report

# Beyond the paper (results/noise.md, results/datasets.md): `make tables` makes them from the
# run cache and their own CSVs (rows of the same code); it computes the missing rows of noise.md
# but not of datasets.md (CPU-hours: `make beyond` computes them). D-AMP and NLR-CS only
# `make beyond-slow` computes (hours on 2 cores; BSD100 on its first 10 images).
beyond: install release
	$(BIN)/cs-bench tables --only noise,datasets
	$(BIN)/cs-bench report

beyond-slow: install release
	$(BIN)/cs-bench tables --only noise,datasets --compute-slow
	$(BIN)/cs-bench report

bench: install
	$(BIN)/cs-bench bench

# Two workers, one per core, each taking the next unfinished and unlocked run: the first
# runs the training study's strategies that bear on the cost of a step (scripts/
# training_study.py, issue 16), then the Tier 1 zoo, then the rest of the study; the second
# the Tier 1 zoo (the campaign: ISTA-Net and FISTA-Net 0.25 from scratch, their
# continuations, then the rest) and then the study. The zoo goes on to Tier 2, whose models
# grow from ISTA-Net 0.25 and train again when it improves. Everything resumes where it
# stopped; run it as `nohup nice -n 19 make train > train.log 2>&1 &`.
STUDY := $(BIN)/python scripts/training_study.py run-all
STUDY_FIRST := $(STUDY) identity-progressive identity-onecycle-bf16
TIER1 := $(BIN)/cs-bench train-zoo --tier 1 --profile cpu --threads 1
TIER2 := $(BIN)/cs-bench train-zoo --tier 2 --profile cpu --threads 1
train: install
	( $(STUDY_FIRST) && $(TIER1) && $(STUDY) && $(TIER2) ) & sleep 5; \
	( $(TIER1) && $(TIER2) && $(STUDY) ) & wait

save-training: install
	$(BIN)/python scripts/save_training.py

train-tier2: install
	$(BIN)/cs-bench train-zoo --tier 2 --profile cpu

lint: install
	$(BIN)/ruff check cs_bench baselines learned tests scripts

clean-cache:
	$(BIN)/cs-bench cache clear
