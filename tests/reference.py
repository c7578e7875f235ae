"""References the engine is checked against: the blog-style OIP ascent (one map, one eager GradientTape step per
epoch on a Keras sub-model; slow by design; bench/bench_oip.py times it), and the dreams' previous compiled loops."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from core.ascent.engine import EPS_RMS, SIDE, TILE, split_tiles
from core.dream.deep_dream import _chain_layers


def eager_ascent_step_loop(
    model: keras.Model, layer: str, image: np.ndarray, map_index: int, epochs: int, step: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """The blog-style reference: one map, one eager ``GradientTape`` step per epoch on a Keras
    sub-model. Slow by design; used by the tests (batched = one at a time) and the benchmark.

    ``image`` ``(28, 28)`` → (final image ``(28, 28)``, loss per epoch ``(epochs,)``)."""
    sub = keras.Model(model.inputs, model.get_layer(layer).output)
    x = tf.Variable(np.asarray(image, np.float32).reshape(1, SIDE, SIDE, 1))
    losses = np.zeros(epochs, np.float32)
    for e in range(epochs):
        with tf.GradientTape() as tape:
            act = sub(x, training=False)
            loss = tf.reduce_mean(act[..., map_index]) if len(act.shape) == 4 else act[0, map_index]
        g = tape.gradient(loss, x)
        g = g / (tf.sqrt(tf.reduce_mean(tf.square(g))) + EPS_RMS)
        x.assign_add(step * g)
        losses[e] = float(loss)
    return x.numpy()[0, ..., 0], losses


def _float(x) -> tf.Tensor:
    return tf.constant(x, dtype=tf.float32)


class PreviousDreamer:
    """The dreams' two compiled loops as they were before they moved onto the one engine (``core.ascent.engine``):
    whole image and tiles, for ``(layer, map or None)`` targets with a weight each. Kept as the reference the
    engine's canvas is checked against (``tests/test_dream.py``)."""

    def __init__(self, model, targets: Sequence[tuple[str, int | None]]) -> None:
        self.targets = tuple((str(layer), None if m is None else int(m)) for layer, m in targets)
        if not self.targets:
            raise ValueError("a Dreamer needs at least one (layer, map) target")
        chain = _chain_layers(model)
        names = [layer.name for layer in chain]
        wanted = {layer for layer, _ in self.targets}
        unknown = sorted(wanted - set(names))
        if unknown:
            raise ValueError(f"layer(s) {unknown} are not in this model; it has {names}")
        deepest = max(names.index(n) for n in wanted)
        self._layers = chain[: deepest + 1]
        self._wanted = wanted
        self.spatial_only = all(len(layer.output.shape) == 4 for layer in self._layers)
        f32, i32 = tf.float32, tf.int32
        scalar = lambda dtype: tf.TensorSpec([], dtype)  # noqa: E731
        weights = tf.TensorSpec([len(self.targets)], f32)
        self._ascent_full = tf.function(
            self._ascent_full_impl,
            input_signature=[
                tf.TensorSpec([None, None], f32),
                scalar(i32),
                scalar(f32),
                weights,
                scalar(f32),
                scalar(f32),
            ],
        )
        self._ascent_tiles = tf.function(
            self._ascent_tiles_impl,
            input_signature=[
                tf.TensorSpec([None, None], f32),
                scalar(i32),
                scalar(f32),
                weights,
                scalar(f32),
                scalar(f32),
                tf.TensorSpec([2], tf.int32),
            ],
        )

    # -- the cost -------------------------------------------------------------------------
    def objective(self, x: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
        """Input ``(B, H, W, 1)`` → cost per image ``(B,)``: Σ weight · mean response of each target."""
        outputs = {}
        for layer in self._layers:
            x = layer(x, training=False)
            if layer.name in self._wanted:
                outputs[layer.name] = x
        parts = []
        for layer_name, m in self.targets:
            act = outputs[layer_name]
            if m is not None:
                act = act[..., m]
            axes = list(range(1, len(act.shape)))
            parts.append(tf.reduce_mean(act, axis=axes) if axes else act)
        return tf.linalg.matvec(tf.stack(parts, axis=1), weights)

    # -- the two compiled ascents (before the dreams moved onto core.ascent.engine.AscentEngine)
    # --------------------------------------------------------
    def _ascent_full_impl(self, image, steps, step_size, weights, lo, hi):
        losses = tf.TensorArray(tf.float32, size=steps)
        for i in tf.range(steps):
            with tf.GradientTape() as tape:
                tape.watch(image)
                value = self.objective(image[None, :, :, None], weights)
                total = tf.reduce_sum(value)
            grads = tape.gradient(total, image)
            grads /= tf.math.reduce_std(grads) + 1e-8
            image = tf.clip_by_value(image + step_size * grads, lo, hi)
            losses = losses.write(i, tf.reduce_mean(value))
        return image, losses.stack()

    def _ascent_tiles_impl(self, image, steps, step_size, weights, lo, hi, seed):
        losses = tf.TensorArray(tf.float32, size=steps)
        for i in tf.range(steps):
            shift = tf.random.stateless_uniform(
                [2], seed=tf.random.experimental.stateless_fold_in(seed, i), minval=0, maxval=TILE, dtype=tf.int32
            )
            with tf.GradientTape() as tape:
                tape.watch(image)
                value = self.objective(split_tiles(image, shift), weights)
                total = tf.reduce_sum(value)
            grads = tape.gradient(total, image)  # flows back through the tiling, the padding and the roll
            grads /= tf.math.reduce_std(grads) + 1e-8
            image = tf.clip_by_value(image + step_size * grads, lo, hi)
            losses = losses.write(i, tf.reduce_mean(value))
        return image, losses.stack()

    # -- public calls (numpy in, numpy out) ------------------------------------------------
    def ascent_full(
        self, image: np.ndarray, steps: int, step_size: float, weights: Sequence[float], lo: float, hi: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W)`` model-space image, whole through the conv layers → ``(H, W)`` and ``(steps,)``."""
        if not self.spatial_only:
            raise ValueError("the whole-image ascent needs conv/pool layers only; use tiles for dense layers")
        out, losses = self._ascent_full(
            _float(image), tf.constant(int(steps)), _float(step_size), _float(list(weights)), _float(lo), _float(hi)
        )
        return out.numpy(), losses.numpy()

    def ascent_tiles(
        self,
        image: np.ndarray,
        steps: int,
        step_size: float,
        weights: Sequence[float],
        lo: float,
        hi: float,
        seed: tuple[int, int],
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(H, W)`` model-space image (H, W ≥ 28), as one batch of 28×28 tiles → ``(H, W)``, ``(steps,)``."""
        image = np.asarray(image, np.float32)
        if min(image.shape) < TILE:
            raise ValueError(f"tiles need an image of at least {TILE}×{TILE}, got {image.shape}")
        out, losses = self._ascent_tiles(
            _float(image),
            tf.constant(int(steps)),
            _float(step_size),
            _float(list(weights)),
            _float(lo),
            _float(hi),
            tf.constant([int(s) % 2**31 for s in seed], tf.int32),
        )
        return out.numpy(), losses.numpy()
