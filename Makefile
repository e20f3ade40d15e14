# Two entry points for a fresh machine (see README):
#   make demo   set up .venv and run the main job
#   make test   set up .venv and run the tests
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: setup demo losses per-class ac test bench clean

setup: $(VENV)/.installed

# $(call train_or_resume,RUN,ARGS): resume RUN if it holds a run (interrupted or finished), else
# start it with ARGS (--config ... and any flags).
train_or_resume = if [ -f $(1)/config.toml ]; then $(BIN)/spiking-gan train --out $(1) --resume \
	$(if $(findstring --quiet,$(2)),--quiet); else $(BIN)/spiking-gan train $(2) --out $(1); fi

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# The main job: train the quick Spiking-GAN on the embedded digits (resumed if interrupted),
# then write 1,000 samples, their grid, all measures and figures of the run.
demo: setup
	mkdir -p runs
	$(call train_or_resume,runs/quick,--config configs/quick.toml)
	$(BIN)/spiking-gan sample --run runs/quick --n 1000 --out runs/quick/samples.npz --grid runs/quick/samples.png
	$(BIN)/spiking-gan evaluate --run runs/quick --out runs/quick/evaluation

# The main job with both losses on 3 seeds each (configs/quick.toml, about 45 minutes; finished runs
# are reused): the loss comparison in figures/per_class_losses/ and the sample grids of seed 0,
# figures/quick_ttfs.png and figures/quick_aggressive.png.
losses: setup
	$(BIN)/spiking-gan compare-losses --config configs/quick.toml --n-seeds 3 --out figures/per_class_losses --quiet
	for l in ttfs aggressive; do \
	  $(BIN)/spiking-gan sample --run figures/per_class_losses/runs/$${l}_seed0 --n 1000 \
	      --out figures/per_class_losses/runs/$${l}_seed0/samples.npz --grid figures/quick_$$l.png; \
	done

# One Spiking-GAN per digit class (configs/quick_digit.toml), for digits 0 and 7, and the 7s again
# with Aggressive TTFS: the sample grids figures/per_class_0.png, per_class_7.png and
# per_class_7_aggressive.png (about 1.5 minutes per run).
per-class: setup
	mkdir -p runs
	for d in 0 7; do \
	  $(call train_or_resume,runs/digit$$d,--config configs/quick_digit.toml --set "data.classes=[$$d]" --quiet); \
	  $(BIN)/spiking-gan sample --run runs/digit$$d --n 1000 --out runs/digit$$d/samples.npz \
	      --grid figures/per_class_$$d.png; \
	done
	$(call train_or_resume,runs/digit7_aggressive,--config configs/quick_digit.toml --loss aggressive --quiet)
	$(BIN)/spiking-gan sample --run runs/digit7_aggressive --n 1000 --out runs/digit7_aggressive/samples.npz \
	    --grid figures/per_class_7_aggressive.png

# The auxiliary-classifier Spiking-GAN (configs/quick_ac.toml) for seeds 0, 1 and 2: the sample
# grids figures/quick_ac_seed0.png ... seed2.png, one class per column (about 2 minutes per run).
ac: setup
	mkdir -p runs
	for s in 0 1 2; do \
	  $(call train_or_resume,runs/quick_ac_seed$$s,--config configs/quick_ac.toml --seed $$s --quiet); \
	  $(BIN)/spiking-gan sample --run runs/quick_ac_seed$$s --n 1000 --out runs/quick_ac_seed$$s/samples.npz \
	      --grid figures/quick_ac_seed$$s.png; \
	done

test: setup
	$(BIN)/pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_forward.py

clean:
	rm -rf $(VENV) *.egg-info
