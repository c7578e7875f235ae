"""Training the CNN with progress reporting, a clean stop, and NaN protection."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import keras
import numpy as np

from core.augmentation.augment import OFF, AugmentConfig
from core.checks import check_range
from core.data import Mnist, PixelScaler
from core.device import FORWARD_BATCH
from core.model import build_model
from core.progress import ProgressCallback, progress_scope
from core.spec import ArchitectureSpec, count_params

OPTIMIZERS = ("rmsprop", "adam", "sgd")
SCHEDULES = ("none", "exponential", "step")
CHECKPOINTS = ("none", "epoch", "epoch+early")  # early: also every tenth of the first epoch, where features form
EARLY_CHECKPOINTS = 10


@dataclass(frozen=True)
class TrainConfig:
    """Training settings. Defaults follow the blog: RMSprop, batch 64, 5 epochs."""

    optimizer: str = "rmsprop"
    learning_rate: float = 1e-3
    momentum: float = 0.9  # SGD only
    schedule: str = "none"
    decay_rate: float = 0.5  # factor per ``decay_epochs`` (exponential: smooth; step: stairs)
    decay_epochs: int = 2
    l2: float = 0.0
    epochs: int = 5
    batch_size: int = 64
    seed: int = 42
    train_limit: int | None = None  # use only the first N training digits
    test_limit: int | None = None
    checkpoints: str = "none"  # keep the weights at the start and after every epoch (a replay of the training)
    augment: AugmentConfig = OFF  # random changes to every training batch (core.augmentation); off: the blog's

    def validate(self) -> None:
        if not isinstance(self.augment, AugmentConfig):
            raise ValueError(f"augment must be an AugmentConfig, got {type(self.augment).__name__}")
        self.augment.validate()
        if self.checkpoints not in CHECKPOINTS:
            raise ValueError(f"checkpoints {self.checkpoints!r} is not one of {CHECKPOINTS}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule {self.schedule!r} is not one of {SCHEDULES}")
        check_range("learning_rate", self.learning_rate, 0, 10, open_low=True)
        check_range("momentum", self.momentum, 0, 1, open_high=True)
        check_range("decay_rate", self.decay_rate, 0, 1, open_low=True)
        if self.decay_epochs < 1:
            raise ValueError(f"decay_epochs={self.decay_epochs} must be ≥ 1")
        check_range("l2", self.l2, 0, 1)
        check_range("epochs", self.epochs, 1, 200)
        check_range("batch_size", self.batch_size, 1, 8192)
        for name in ("train_limit", "test_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name}={value} must be ≥ 1 or None")


@dataclass
class TrainResult:
    """What a training run produced. ``status`` is completed, stopped or diverged."""

    model: keras.Model
    spec: ArchitectureSpec
    scaler: PixelScaler
    config: TrainConfig
    history: dict[str, list[float]]
    batch_history: list[tuple[float, float, float]]  # (fractional epoch, loss, accuracy)
    test_accuracy: float
    test_loss: float
    confusion: np.ndarray  # (10, 10): rows true class, columns predicted
    misclassified: np.ndarray  # test-set indices
    predictions: np.ndarray  # (N_test,) predicted classes
    seconds: float
    epoch_seconds: list[float]
    device: str
    status: str
    message: str = ""
    params: int = 0
    # (position in epochs, weights as float16), from the start (0.0) on, when config.checkpoints asks for them
    checkpoints: list[tuple[float, list[np.ndarray]]] = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "test_accuracy": round(self.test_accuracy, 5),
            "test_loss": round(self.test_loss, 5),
            "params": self.params,
            "seconds": round(self.seconds, 2),
            "epochs_done": len(self.epoch_seconds),
            "device": self.device,
            "status": self.status,
        }


def compute_device() -> str:
    from core.device import device_kind

    return device_kind()


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    lr = float(config.learning_rate)  # Keras refuses an int (e.g. learning_rate=10)
    if config.schedule != "none":
        lr = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate,
            decay_steps=config.decay_epochs * steps_per_epoch,
            decay_rate=config.decay_rate,
            staircase=config.schedule == "step",
        )
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(lr)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(lr)
    return keras.optimizers.SGD(lr, momentum=config.momentum)


def shuffled_batches(x: np.ndarray, y: np.ndarray, batch_size: int, epochs: int, seed: int):
    """A ``tf.data.Dataset`` of ``(images, labels)`` batches over ``epochs`` epochs, the training digits in
    a new order every epoch. The order of epoch ``e`` is a stateless shuffle seeded by ``(seed, e)``: it
    depends on the seed alone, never on a process-wide random state or on other jobs.

    ``x`` ``(N, 28, 28, 1)`` float32, ``y`` ``(N,)`` → batches ``(B, 28, 28, 1)``, ``(B,)`` (the last one of
    each epoch may be smaller). Like Keras' own array adapter, it batches shuffled indices and gathers.
    """
    import tensorflow as tf

    n = len(x)
    seed_t = tf.constant(int(seed), tf.int64)

    def epoch_order(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=tf.stack([seed_t, epoch]))
        return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

    indices = tf.data.Dataset.range(epochs).flat_map(epoch_order)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    batches = tf.data.Dataset.zip((indices, data)).map(
        lambda idx, d: (tf.gather(d[0], idx), tf.gather(d[1], idx)), num_parallel_calls=tf.data.AUTOTUNE
    )
    return batches.prefetch(tf.data.AUTOTUNE)


def augmented_batches(
    raw: np.ndarray, y: np.ndarray, scaler: PixelScaler, augment: AugmentConfig, batch_size: int, epochs: int, seed: int
):
    """``shuffled_batches`` of raw digits ``raw`` ``(N, 28, 28)`` 0..255, each batch augmented on the fly
    (``core.augmentation.augment_batch``, seeded by ``(seed, batch number)``: the same seed gives the same batches)
    and then standardised by ``scaler`` → batches ``(B, 28, 28, 1)``, ``(B,)``. The augmentation acts on raw pixels:
    a standardised digit has no blank background to shift into (each pixel has its own mean)."""
    import tensorflow as tf

    from core.augmentation.augment import augment_batch

    mean = tf.constant(scaler.mean.astype(np.float32).reshape(28, 28))
    std = tf.constant(scaler.std.astype(np.float32).reshape(28, 28))
    seed_t = tf.constant(int(seed), tf.int64)

    def change(number, batch):
        images, labels = batch
        images = augment_batch(images, augment, tf.stack([seed_t, number]))
        return ((images - mean) / std)[..., None], labels

    raw = np.asarray(raw)
    digits = raw if raw.dtype == np.uint8 else raw.astype(np.float32)  # uint8: a quarter of the memory
    batches = shuffled_batches(digits, y, batch_size, epochs, seed)
    return batches.enumerate().map(change, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


class _KerasProgress(keras.callbacks.Callback):
    """Forwards Keras' batch/epoch events to a ProgressCallback; stops on request or on NaN."""

    def __init__(self, progress: ProgressCallback, steps_per_epoch: int) -> None:
        super().__init__()
        self.progress = progress
        self.steps = steps_per_epoch
        self.epoch = 0
        self.done = 0
        self.batch_history: list[tuple[float, float, float]] = []
        self.epoch_seconds: list[float] = []
        self.good_weights = None
        self.diverged = False
        self.stopped = False
        self._epoch_start = 0.0

    def on_train_begin(self, logs=None):
        self.good_weights = self.model.get_weights()
        self.progress.on_step(0, {"phase": "compiling the training step (the first batch takes a few seconds)"})

    def on_test_begin(self, logs=None):
        if not (self.diverged or self.stopped):
            self.progress.on_step(
                self.done, {"phase": f"epoch {self.epoch + 1}: measuring the test accuracy", "epoch": self.epoch + 1}
            )

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        loss = float(logs.get("loss", float("nan")))
        acc = float(logs.get("accuracy", float("nan")))
        self.batch_history.append((self.epoch + (batch + 1) / self.steps, loss, acc))
        if not math.isfinite(loss):
            self.diverged = True
            self.model.stop_training = True
            return
        self.progress.on_step(self.done, {"epoch": self.epoch + 1, "batch": batch + 1, "loss": loss, "accuracy": acc})
        if self.progress.should_stop():
            self.stopped = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged or self.stopped:
            return  # a partial epoch is not reported as an epoch
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)
        self.good_weights = self.model.get_weights()
        self.progress.on_epoch(epoch + 1, {k: float(v) for k, v in (logs or {}).items()})


class _Checkpoints(keras.callbacks.Callback):
    """Copies of the weights (float16: half the bytes, plenty for filters, OIPs and accuracy) at the start, after
    every epoch and, with 'epoch+early', every tenth of the first epoch. A copy is a host transfer of the weights,
    nothing more (the overhead is measured in bench/bench_checkpoints.py)."""

    def __init__(self, early: bool, steps_per_epoch: int) -> None:
        super().__init__()
        self.kept: list[tuple[float, list[np.ndarray]]] = []
        # after the batches nearest to each tenth of the first epoch (labels 0.1, 0.2, ... as a learner expects)
        self.early = (
            {round(steps_per_epoch * i / EARLY_CHECKPOINTS) for i in range(1, EARLY_CHECKPOINTS)} if early else set()
        )
        self.early.discard(0)
        self.steps = steps_per_epoch
        self.epoch = 0

    def _keep(self, position: float) -> None:
        weights = [w.astype(np.float16) for w in self.model.get_weights()]
        if all(np.all(np.isfinite(w)) for w in weights):  # a diverged step is not a checkpoint
            self.kept.append((round(float(position), 4), weights))

    def on_train_begin(self, logs=None):
        self._keep(0.0)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 0 and batch + 1 in self.early and batch + 1 < self.steps:
            self._keep((batch + 1) / self.steps)

    def on_epoch_end(self, epoch, logs=None):
        if not self.model.stop_training:  # a stopped or diverged epoch is not a finished one
            self._keep(epoch + 1)


def train(
    spec: ArchitectureSpec, config: TrainConfig, mnist: Mnist, progress: ProgressCallback | None = None
) -> TrainResult:
    """Fit the scaler on the training digits, build and train the model, evaluate on the test digits.

    On a stop request training ends after the current batch and the result holds the weights
    trained so far (``status='stopped'``). When the loss turns NaN the weights of the last
    finished epoch are restored (``status='diverged'``).
    """
    config.validate()
    data = mnist.subset(config.train_limit, config.test_limit)
    started = time.perf_counter()
    steps = math.ceil(len(data.x_train) / config.batch_size)
    with progress_scope(progress, steps * config.epochs, "training") as prog:
        augmented = " (an augmented copy of them)" if config.augment.enabled else ""
        prog.on_step(0, {"phase": f"standardizing {len(data.x_train):,} training digits{augmented}"})
        scaler = PixelScaler.fit(fit_digits(data.x_train, config))
        prog.on_step(0, {"phase": "building the model"})
        model = build_model(spec, l2=config.l2, seed=config.seed)
        return fit_model(
            model, spec, scaler, config, data.x_train, data.y_train, data.x_test, data.y_test, prog, started
        )


def fit_digits(x_train: np.ndarray, config: TrainConfig) -> np.ndarray:
    """The digits the scaler is fitted on: the training digits, or with augmentation one augmented copy of them.
    A shifted or thickened digit has ink where the plain ones (almost) never do, and such a pixel's tiny spread
    would turn that ink into inputs of thousands; fitted on augmented digits, the spread covers it."""
    if not config.augment.enabled:
        return x_train
    from core.augmentation.augment import augment_digits

    return augment_digits(x_train, config.augment, config.seed + 1)


def fit_model(
    model: keras.Model,
    spec: ArchitectureSpec,
    scaler: PixelScaler,
    config: TrainConfig,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    prog: ProgressCallback,
    started: float | None = None,
) -> TrainResult:
    """Train ``model`` (built, uncompiled or compiled; its weights are the start) on raw digits ``x_train``
    ``(N, 28, 28)`` 0..255 with ``y_train`` ``(N,)`` through ``scaler``, with ``config``'s optimizer, epochs,
    batch size and seed; measure it on ``x_test``/``y_test``. ``prog`` counts ``ceil(N / batch) * epochs``
    batches. Stops and divergence as in ``train``; the training recipes (``train``, ``core.experiments.fine_tune``)
    share it."""
    started = time.perf_counter() if started is None else started
    steps = math.ceil(len(x_train) / config.batch_size)
    y_train, y_test = np.asarray(y_train).astype(np.int32), np.asarray(y_test).astype(np.int32)
    if config.augment.enabled:
        batches = augmented_batches(
            x_train, y_train, scaler, config.augment, config.batch_size, config.epochs, config.seed
        )
    else:
        batches = shuffled_batches(scaler.transform(x_train), y_train, config.batch_size, config.epochs, config.seed)
    x_test = scaler.transform(x_test)
    model.compile(optimizer=make_optimizer(config, steps), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    adapter = _KerasProgress(prog, steps)
    callbacks = [adapter]
    if config.checkpoints != "none":
        callbacks.append(_Checkpoints(config.checkpoints == "epoch+early", steps))
    fit = model.fit(
        batches,
        epochs=config.epochs,
        steps_per_epoch=steps,
        validation_data=(x_test, y_test),
        validation_batch_size=FORWARD_BATCH,
        callbacks=callbacks,
        verbose=0,
        shuffle=False,
    )
    prog.on_step(adapter.done, {"phase": f"evaluating the final model on {len(x_test):,} test digits"})
    seconds = time.perf_counter() - started
    status, message = "completed", ""
    if adapter.diverged:
        model.set_weights(adapter.good_weights)
        status = "diverged"
        message = (
            f"The loss became NaN in epoch {adapter.epoch + 1}; the weights of the last finished epoch "
            f"({len(adapter.epoch_seconds)}) were kept. Lower the learning rate ({config.learning_rate})."
        )
    elif adapter.stopped:
        status = "stopped"
        message = f"Stopped by request after {adapter.done} of {steps * config.epochs} batches."
    history = {k: [float(v) for v in vals][: len(adapter.epoch_seconds)] for k, vals in fit.history.items()}
    probs = model.predict(x_test, batch_size=FORWARD_BATCH, verbose=0)
    predicted = probs.argmax(axis=1)
    test_loss = float(keras.losses.sparse_categorical_crossentropy(y_test, probs).numpy().mean())
    confusion = np.zeros((spec.num_classes, spec.num_classes), dtype=np.int64)
    np.add.at(confusion, (y_test, predicted), 1)
    return TrainResult(
        model=model,
        spec=spec,
        scaler=scaler,
        config=config,
        history=history,
        batch_history=adapter.batch_history,
        test_accuracy=float((predicted == y_test).mean()),
        test_loss=test_loss,
        confusion=confusion,
        misclassified=np.flatnonzero(predicted != y_test),
        predictions=predicted,
        seconds=seconds,
        epoch_seconds=adapter.epoch_seconds,
        device=compute_device(),
        status=status,
        message=message,
        params=count_params(spec),
        checkpoints=callbacks[1].kept if len(callbacks) > 1 else [],
    )


def config_to_dict(config: TrainConfig) -> dict:
    """The settings as run.json keeps them; the augmentation as its text (``shift=2,rotate=10`` or ``none``)."""
    data = asdict(config)
    data["augment"] = config.augment.text()
    return data
