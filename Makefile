# Two entry points for a fresh machine (see README):
#   make demo   set up .venv and run the main job
#   make test   set up .venv and run the tests
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

demo: setup
	mkdir -p runs/demo
	$(BIN)/spiking-gan simulate --layers 784,400,2 --digits --batch 32 --backend brian2 \
	    --out runs/demo/spikes.npz --raster runs/demo/raster.png

test: setup
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_forward.py

clean:
	rm -rf $(VENV) *.egg-info
