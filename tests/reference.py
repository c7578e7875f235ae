"""The blog-style reference of the OIP ascent: one map, one eager GradientTape step per epoch on a Keras
sub-model. Slow by design; the tests check the compiled engine against it and bench/bench_oip.py times it."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from core.oip import EPS_RMS, SIDE


def eager_ascent_step_loop(model: keras.Model, layer: str, image: np.ndarray, map_index: int, epochs: int,
                           step: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
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
