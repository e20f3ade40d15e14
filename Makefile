# Two entry points for a fresh machine (see README):
#   make demo   set up .venv and run the main job
#   make test   set up .venv and run the tests
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup demo per-class ac test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The main job: train the quick Spiking-GAN on the embedded digits (resumed if interrupted),
# then write 1,000 samples, their grid, all measures and figures of the run.
demo: setup
	mkdir -p runs
	if [ -f runs/quick/config.toml ]; then $(BIN)/spiking-gan train --out runs/quick --resume; \
	else $(BIN)/spiking-gan train --config configs/quick.toml --out runs/quick; fi
	$(BIN)/spiking-gan sample --run runs/quick --n 1000 --out runs/quick/samples.npz --grid runs/quick/samples.png
	$(BIN)/spiking-gan evaluate --run runs/quick --out runs/quick/evaluation

# One Spiking-GAN per digit class (configs/quick_digit.toml), for digits 0 and 7, and the 7s again
# with Aggressive TTFS: the sample grids figures/per_class_0.png, per_class_7.png and
# per_class_7_aggressive.png (about 1.5 minutes per run).
per-class: setup
	mkdir -p runs
	for d in 0 7; do \
	  if [ -f runs/digit$$d/config.toml ]; then $(BIN)/spiking-gan train --out runs/digit$$d --resume --quiet; \
	  else $(BIN)/spiking-gan train --config configs/quick_digit.toml --set "data.classes=[$$d]" \
	      --out runs/digit$$d --quiet; fi; \
	  $(BIN)/spiking-gan sample --run runs/digit$$d --n 1000 --out runs/digit$$d/samples.npz \
	      --grid figures/per_class_$$d.png; \
	done
	if [ -f runs/digit7_aggressive/config.toml ]; then $(BIN)/spiking-gan train --out runs/digit7_aggressive --resume --quiet; \
	else $(BIN)/spiking-gan train --config configs/quick_digit.toml --loss aggressive \
	    --out runs/digit7_aggressive --quiet; fi
	$(BIN)/spiking-gan sample --run runs/digit7_aggressive --n 1000 --out runs/digit7_aggressive/samples.npz \
	    --grid figures/per_class_7_aggressive.png

# The auxiliary-classifier Spiking-GAN (configs/quick_ac.toml) for seeds 0, 1 and 2: the sample
# grids figures/quick_ac_seed0.png ... seed2.png, one class per column (about 2 minutes per run).
ac: setup
	mkdir -p runs
	for s in 0 1 2; do \
	  if [ -f runs/quick_ac_seed$$s/config.toml ]; then $(BIN)/spiking-gan train --out runs/quick_ac_seed$$s --resume --quiet; \
	  else $(BIN)/spiking-gan train --config configs/quick_ac.toml --seed $$s --out runs/quick_ac_seed$$s --quiet; fi; \
	  $(BIN)/spiking-gan sample --run runs/quick_ac_seed$$s --n 1000 --out runs/quick_ac_seed$$s/samples.npz \
	      --grid figures/quick_ac_seed$$s.png; \
	done

test: setup
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_forward.py

clean:
	rm -rf $(VENV) *.egg-info
