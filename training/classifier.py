"""The S4NN sanity check: a spiking classifier trained with the same learning rule."""
from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np

from models.coding import decide, encode_images
from models.kernel import forward
from models.network import init_network, init_ranges, neuron_params
from models.neuron import NeuronParams
from training import backprop
from training.config import ClassifierConfig
from training.data import random_shift
from training.losses import earliest_output_time, loss_value, output_error, targets


def evaluate(weights, params: NeuronParams, t_in: np.ndarray, labels: np.ndarray,
             batch: int = 500) -> Dict[str, float]:
    """Accuracy (no output spike = wrong), decision time and spikes per image."""
    correct, t_dec, spikes, silent = 0, [], 0, 0
    for s in range(0, len(t_in), batch):
        times = forward(weights, t_in[s:s + batch], params)
        win, tf = decide(times[-1], params.t_max)
        correct += int((win == labels[s:s + batch]).sum())
        t_dec.append(tf)
        spikes += sum(int((t < params.t_max).sum()) for t in times)
        silent += int((win < 0).sum())
    t_dec = np.concatenate(t_dec)
    n = len(t_in)
    return {"accuracy": correct / n,
            "decision_time_ms": float(np.mean(t_dec) * params.dt_ms),
            "spikes_per_image": spikes / n,
            "no_decision_rate": silent / n}


def train(cfg: ClassifierConfig, train_images, train_labels, test_images=None, test_labels=None,
          progress: bool = True, on_epoch: Optional[Callable[[int, dict], None]] = None):
    """Train the classifier; returns (weights, list of per-epoch metrics)."""
    from tqdm import tqdm

    rng = np.random.default_rng(cfg.seed)
    params = neuron_params(cfg.neuron, cfg.network)
    n_classes = int(train_labels.max()) + 1
    weights = init_network(rng, train_images[0].size, cfg.network, n_classes)
    ranges = init_ranges(cfg.network)
    t_train = encode_images(train_images, params.t_max)
    train_images = np.asarray(train_images)
    t_test = encode_images(test_images, params.t_max) if test_images is not None else None
    dead = backprop.DeadNeuronMonitor([t_train.shape[1], *cfg.network.hidden, n_classes],
                                      cfg.train.dead_min_rate)
    history = []
    B = cfg.train.batch_size
    avg, n_avg = None, 0  # running mean of end-of-epoch weights (train.average_from)
    for epoch in range(cfg.train.epochs):
        order = rng.permutation(len(t_train))
        if cfg.train.augment_shift:  # a freshly shifted copy of the training set every epoch
            t_train = encode_images(random_shift(train_images, cfg.train.augment_shift, rng), params.t_max)
        lr = [eta * cfg.train.lr_decay ** epoch for eta in cfg.network.lr]
        losses, correct = [], 0
        bar = tqdm(range(0, len(order), B), desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
                   disable=not progress, leave=False)
        for s in bar:
            idx = order[s:s + B]
            tr = backprop.forward_trace(weights, t_train[idx], params)
            y = train_labels[idx]
            T = targets(cfg.loss.kind, tr.output, y, params.t_max, cfg.loss.gamma, cfg.loss.alpha,
                        cfg.loss.variant, earliest_output_time(tr.layer_input(-1), params.t_max,
                                                               params.latency))
            e = output_error(T, tr.output, params.t_max)
            losses.append(loss_value(e))
            correct += int((decide(tr.output, params.t_max)[0] == y).sum())
            grads, _ = backprop.backward(weights, tr, e, params)
            backprop.sgd_step(weights, grads, lr, cfg.train.l2)
            dead.update(tr, params.t_max)
        m = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "train_accuracy": correct / len(order)}
        if t_test is not None:
            m.update({f"test_{k}": v for k, v in evaluate(weights, params, t_test, test_labels).items()})
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
        m["revived"] = [0] * len(cfg.network.hidden) if last else dead.reinit(weights, ranges, rng)
        history.append(m)
        if on_epoch:
            on_epoch(epoch, m)
    if avg is not None:
        # Stochastic weight averaging (Izmailov et al. 2018): the mean of the end-of-epoch weights
        # from epoch ``average_from`` on; per-sample S4NN updates at a fixed lr make the test
        # accuracy fluctuate by a few % between epochs, the average sits in the middle of that walk.
        weights = [a.astype(np.float32) for a in avg]
        m = {"epoch": cfg.train.epochs, "kind": "average", "averaged_epochs": n_avg}
        if t_test is not None:
            m.update({f"test_{k}": v for k, v in evaluate(weights, params, t_test, test_labels).items()})
        history.append(m)
        if on_epoch:
            on_epoch(cfg.train.epochs - 1, m)
    return weights, history
