"""The S4NN sanity check: a spiking classifier trained with the same learning rule.

:func:`train` trains one in memory; :func:`run_classifier` is ``spiking-gan classify``: a run
folder with ``config.toml``, ``run.json``, ``metrics.jsonl`` (one line per epoch),
``weights.npz`` (checkpoint format) and ``metrics.json`` (the final test measures).

Two learning rules (``train.rule``): ``"batched"``, the default recipe
(``configs/classify.toml``: mini-batch means of S4NN's per-sample updates,
:mod:`training.backprop`, float32, shuffled epochs, weight averaging), and
``"reference"``, **the reference**: S4NN exactly as its published code runs it
(:mod:`training.s4nn_reference`, ``configs/s4nn_reference.toml``), replayable in that code
from the run's ``replay.npz``. Both report the strict first-spike accuracy and S4NN's own
readout (:func:`models.coding.s4nn_readout_correct`).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable

import numpy as np

from models.coding import decide, encode_images, s4nn_readout_correct
from models.files import save_npz
from models.kernel import forward
from models.network import init_network, init_ranges, neuron_params
from models.neuron import NeuronParams
from models.resources import check_memory, training_bytes
from models.spikes import spike_counts
from training import backprop, checkpoint, s4nn_reference
from training import config as config_mod
from training.config import ClassifierConfig
from training.data import load_dataset, random_shift
from training.losses import earliest_output_time, loss_value, output_error, targets
from training.runinfo import atomic_json, atomic_write, check_out_dir, holds_folder, make_out_dir, run_record


def evaluate(weights, params: NeuronParams, t_in: np.ndarray, labels: np.ndarray,
             batch: int = 500, dtype=np.float32) -> dict[str, float]:
    """Accuracy by two readouts, decision time and spikes per image.

    ``accuracy`` is the strict first-spike readout (:func:`models.coding.decide`: a tie goes
    to the lowest index, no output spike is wrong); ``accuracy_s4nn_readout`` is the S4NN
    reference code's (:func:`models.coding.s4nn_readout_correct`: a tie is correct when the
    label is among the first, a silent output layer is read by its late potential).
    ``spikes_per_image`` is :func:`models.spikes.spikes_per_sample` of the hidden and output
    layers over all of ``t_in`` (computed in batches of ``batch`` images); ``dtype`` is the
    accumulation precision of the forward pass.
    """
    correct, lenient, t_dec, counts, silent = 0, 0, [], [], 0
    for s in range(0, len(t_in), batch):
        times = forward(weights, t_in[s:s + batch], params, dtype=dtype)
        y = labels[s:s + batch]
        win, tf = decide(times[-1], params.t_max)
        correct += int((win == y).sum())
        hidden = t_in[s:s + batch] if len(times) == 1 else times[-2]
        lenient += int(s4nn_readout_correct(times[-1], hidden, weights[-1], y, params.t_max,
                                            params.latency).sum())
        t_dec.append(tf)
        counts.append(spike_counts(times, params.t_max))
        silent += int((win < 0).sum())
    t_dec = np.concatenate(t_dec)
    n = len(t_in)
    return {"accuracy": correct / n,
            "accuracy_s4nn_readout": lenient / n,
            "decision_time_ms": float(np.mean(t_dec) * params.dt_ms),
            "spikes_per_image": float(np.concatenate(counts).mean()),
            "no_decision_rate": silent / n}


def _batched_epoch(cfg, weights, params, t_train, train_labels, order, lr, dead, bar):
    """One epoch of the batched rule (:mod:`training.backprop`); returns (losses, correct)."""
    B = cfg.train.batch_size
    losses, correct = [], 0
    for s in bar(range(0, len(order), B)):
        idx = order[s:s + B]
        tr = backprop.forward_trace(weights, t_train[idx], params)
        y = train_labels[idx]
        T = targets(cfg.loss.kind, tr.output, y, params.t_max, cfg.loss.gamma, cfg.loss.alpha,
                    cfg.loss.variant, earliest_output_time(tr.layer_input_times(-1), params.t_max,
                                                           params.latency))
        e = output_error(T, tr.output, params.t_max)
        losses.append(loss_value(e))
        correct += int((decide(tr.output, params.t_max)[0] == y).sum())
        grads, _ = backprop.backward(weights, tr, e, params)
        backprop.sgd_step(weights, grads, lr, cfg.train.l2)
        dead.update(tr, params.t_max)
    return losses, correct


def _reference_epoch(cfg, weights, params, t_train, train_labels, lr, counts, bar):
    """One epoch of the reference rule (:mod:`training.s4nn_reference`): every image in data
    order, one update each; returns (losses, correct)."""
    losses, correct = [], 0
    for i in bar(range(len(t_train))):
        times, e = s4nn_reference.train_image(weights, t_train[i], int(train_labels[i]), params, lr,
                                              cfg.train.l2, cfg.loss)
        losses.append(loss_value(e[None]))
        correct += int(decide(times[-1][None], params.t_max)[0][0] == train_labels[i])
        for c, t in zip(counts, times[:-1]):
            c += t < params.t_max
    return losses, correct


def train(cfg: ClassifierConfig, train_images, train_labels, test_images=None, test_labels=None,
          progress: bool = True, on_epoch: Callable[[int, dict], None] | None = None,
          on_start: Callable[[list], None] | None = None):
    """Train the classifier; returns (weights, list of per-epoch metrics).

    ``train.rule`` picks the learning rule: ``"batched"`` (:mod:`training.backprop`, the
    default recipe) or ``"reference"`` (:mod:`training.s4nn_reference`, S4NN's published code
    step for step). ``on_start`` is called with the initial weights before the first update.
    """
    from tqdm import tqdm

    reference = cfg.train.rule == "reference"
    params = neuron_params(cfg.neuron, cfg.network)
    n_classes = int(train_labels.max()) + 1
    ranges = init_ranges(cfg.network)
    sizes = [train_images[0].size, *cfg.network.hidden, n_classes]
    if reference:
        weights, rng = s4nn_reference.init_weights(cfg.seed, sizes, ranges)
        dtype = np.float64
    else:
        rng = np.random.default_rng(cfg.seed)
        weights = init_network(rng, sizes[0], cfg.network, n_classes)
        dtype = np.float32
    if on_start is not None:
        on_start(weights)
    t_train = encode_images(train_images, params.t_max)
    train_images = np.asarray(train_images)
    t_test = encode_images(test_images, params.t_max) if test_images is not None else None
    dead = backprop.DeadNeuronMonitor(sizes, cfg.train.dead_min_rate)
    history = []
    avg, n_avg = None, 0  # running mean of end-of-epoch weights (train.average_from)
    for epoch in range(cfg.train.epochs):
        lr = [eta * cfg.train.lr_decay ** epoch for eta in cfg.network.lr]

        def bar(it, epoch=epoch):
            return tqdm(it, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", disable=not progress, leave=False)

        if reference:
            counts = [np.zeros(n, dtype=np.int64) for n in sizes[1:-1]]
            losses, correct = _reference_epoch(cfg, weights, params, t_train, train_labels, lr, counts, bar)
        else:
            order = rng.permutation(len(t_train))
            if cfg.train.augment_shift:  # a freshly shifted copy of the training set every epoch
                t_train = encode_images(random_shift(train_images, cfg.train.augment_shift, rng), params.t_max)
            losses, correct = _batched_epoch(cfg, weights, params, t_train, train_labels, order, lr, dead, bar)
        m = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "train_accuracy": correct / len(t_train)}
        if t_test is not None:
            m.update({f"test_{k}": v for k, v in
                      evaluate(weights, params, t_test, test_labels, dtype=dtype).items()})
        # Dead hidden neurons are re-initialised *after* the evaluation, as in the S4NN reference
        # code, and only when another epoch follows: a freshly drawn neuron fires at t ~ 1 for
        # every image and, through its old output weights, can flip early decisions (measured: a
        # test accuracy of 0.88 dropping to 0.68 right after 3 neurons were revived), so the
        # returned (final) network is the one that was trained and evaluated.
        last = epoch + 1 == cfg.train.epochs
        if cfg.train.average_from and epoch + 1 >= cfg.train.average_from:
            n_avg += 1
            avg = [w.copy() for w in weights] if avg is None else [a + (w - a) / n_avg
                                                                  for a, w in zip(avg, weights)]
        if last:
            m["revived"] = [0] * len(cfg.network.hidden)
        elif reference:
            m["revived"] = s4nn_reference.redraw_dead(weights, counts, len(t_train), cfg.train.dead_min_rate,
                                                      ranges, rng)
        else:
            m["revived"] = dead.reinit(weights, ranges, rng)
        history.append(m)
        if on_epoch:
            on_epoch(epoch, m)
    if avg is not None:
        # Stochastic weight averaging (Izmailov et al. 2018): the mean of the end-of-epoch weights
        # from epoch ``average_from`` on; per-sample S4NN updates at a fixed lr make the test
        # accuracy fluctuate by a few % between epochs, the average sits in the middle of that walk.
        weights = [a.astype(dtype) for a in avg]
        m = {"epoch": cfg.train.epochs, "kind": "average", "averaged_epochs": n_avg}
        if t_test is not None:
            m.update({f"test_{k}": v for k, v in
                      evaluate(weights, params, t_test, test_labels, dtype=dtype).items()})
        history.append(m)
        if on_epoch:
            on_epoch(cfg.train.epochs - 1, m)
    return weights, history


#: The replay file of a reference run (:func:`run_classifier`).
REPLAY_FILE = "replay.npz"


def write_replay(path: str, initial_weights, input_times: np.ndarray, labels: np.ndarray) -> None:
    """Write ``replay.npz`` atomically: what the published S4NN code needs to replay a reference run."""
    arrays = {f"initial_weights_{k}": np.asarray(w, np.float64) for k, w in enumerate(initial_weights)}
    arrays.update(input_times=np.asarray(input_times, np.int32), labels=np.asarray(labels, np.int64))
    save_npz(path, arrays, compress=True)


def _print_epoch(m: dict) -> None:
    if m.get("kind") == "average":
        print(f"average of the last {m['averaged_epochs']} epochs' weights: test acc "
              f"{m['test_accuracy']:.3f} (S4NN's readout {m['test_accuracy_s4nn_readout']:.3f}), "
              f"decision {m['test_decision_time_ms']:.1f} ms", flush=True)
    else:
        print(f"epoch {m['epoch']}: train acc {m['train_accuracy']:.3f}, test acc "
              f"{m['test_accuracy']:.3f} (S4NN's readout {m['test_accuracy_s4nn_readout']:.3f}), "
              f"decision {m['test_decision_time_ms']:.1f} ms, "
              f"{m['test_spikes_per_image']:.0f} spikes/image", flush=True)


@holds_folder("classify")
def run_classifier(cfg: ClassifierConfig, out_dir: str, force: bool = False,
                   progress: bool = True) -> dict[str, float]:
    """``spiking-gan classify``: train the classifier into the run folder ``out_dir``.

    The folder and the data set are checked before anything is written
    (:func:`training.runinfo.check_out_dir`); ``weights.npz`` and ``metrics.json`` are
    written atomically when training has finished. With ``train.rule = "reference"`` the
    folder also gets ``replay.npz`` (written before training): ``initial_weights_0``,
    ``initial_weights_1``, ... (float64, layout (n_in, n_out) as ``weights.npz``),
    ``input_times`` (N, n_in) and ``labels`` (N,) of the training images in the order every
    epoch uses them, so that the published S4NN code can replay the run.

    Parameters
    ----------
    cfg : ClassifierConfig
    out_dir : run folder (created with its parents; an existing classify run is replaced
        only with ``force``)
    force : replace a classify run in ``out_dir``
    progress : tqdm bars and one line per epoch

    Returns
    -------
    dict : what ``metrics.json`` holds (test_accuracy, decision_time_ms, spikes_per_image, ...)
    """
    action = check_out_dir(out_dir, "classify", force=force)
    check_memory(training_bytes([[784, *cfg.network.hidden, 10]], cfg.train.batch_size),
                 "the config's network.hidden and train.batch_size", "training this classifier")
    data = load_dataset(cfg.data)
    make_out_dir(out_dir, "classify", action, run_record(cfg.seed, {"kind": "classifier"}))
    atomic_write(os.path.join(out_dir, "config.toml"), config_mod.to_toml(cfg))

    with open(os.path.join(out_dir, "metrics.jsonl"), "w") as log:
        def on_epoch(epoch, m):
            log.write(json.dumps(m) + "\n")
            log.flush()
            if progress:
                _print_epoch(m)

        on_start = None
        if cfg.train.rule == "reference":  # the replay is written first: an interrupted run keeps it
            def on_start(weights):
                write_replay(os.path.join(out_dir, REPLAY_FILE), weights,
                             encode_images(data.train_images, cfg.neuron.t_max), data.train_labels)
        weights, history = train(cfg, data.train_images, data.train_labels, data.test_images,
                                 data.test_labels, progress=progress, on_epoch=on_epoch,
                                 on_start=on_start)
    last = history[-1]
    epochs = sum(m.get("kind") != "average" for m in history)  # (the average's entry is no epoch)
    result = {"test_accuracy": last["test_accuracy"],
              "test_accuracy_s4nn_readout": last["test_accuracy_s4nn_readout"],
              "rule": cfg.train.rule,
              "decision_time_ms": last["test_decision_time_ms"],
              "spikes_per_image": last["test_spikes_per_image"],
              "no_decision_rate": last["test_no_decision_rate"], "epochs": epochs,
              "dataset": data.name, "n_train": int(len(data.train_images)),
              "n_test": int(len(data.test_images))}
    checkpoint.save(os.path.join(out_dir, "weights.npz"), {"w": weights}, {"epoch": epochs})
    atomic_json(os.path.join(out_dir, "metrics.json"), result)
    return result
