"""data2vec.cpp from Python: Data2Vec audio / text / vision inference, outputs equal to Transformers.

    import d2v
    model = d2v.Model("models/digits-ctc.gguf")
    result = model.audio("samples/seven.wav")        # a path, a list of paths, or float32 arrays
    result.items[0]["text"]                          # 'SEVEN'
    result.outputs["logits"]                         # numpy array, named like Transformers' field

One Model may be shared by several Python threads: the model runs with the GIL released.
Every failure raises d2v.Error (a RuntimeError) with the library's message.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


def _short_openmp_spin():
    """The CLIs' OpenMP wait policy (examples/omp_policy.cpp, README "Performance"), for this process.

    libgomp reads GOMP_SPINCOUNT once, when it is loaded: set it before the extension loads it, unless
    the user chose a policy or a libgomp is already loaded (then it has read its environment and a
    change here would only reach child processes). Child processes inherit the variable."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    try:
        with open("/proc/self/maps") as maps:
            if "/libgomp.so" in maps.read():
                return
    except OSError:  # not Linux: libgomp's default stays
        return
    os.environ["GOMP_SPINCOUNT"] = "5000"  # = D2V_OMP_SPINCOUNT in examples/omp_policy.h


_short_openmp_spin()

from . import _d2v  # noqa: E402  (loads libgomp: after the policy above)

__version__ = _d2v.__version__
__all__ = ["Error", "Model", "Result", "read_image", "set_num_threads", "__version__"]


class Error(RuntimeError):
    """A bad model file or input: the message says what and where."""


def _call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except RuntimeError as e:  # the library's d2v::Error (nanobind maps std::runtime_error here)
        raise Error(str(e)) from None


@dataclass
class Result:
    """outputs: every model output and input as numpy arrays, named as Transformers names them
    (logits, last_hidden_state, hidden_states.<i>, input_values, input_ids, pixel_values, ...).
    items: per input, what the head means: {"text", "labels": [(label, id, score)], "spans":
    [{"start", "end", "text", "labels"}], "mask": HxW class ids or None, "token_ids"}.
    notes: what was done to the inputs (resampling, truncation, UTF-8 repair)."""

    outputs: dict[str, np.ndarray]
    items: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    seconds_per_frame: float = 0.0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.outputs[name]


def _result(raw: dict) -> Result:
    return Result(raw["outputs"], raw["items"], raw["notes"], raw["seconds_per_frame"])


def _paths(x) -> list[str] | None:
    """A path or a list of paths as strings; None if x holds arrays instead."""
    if isinstance(x, (str, os.PathLike)):
        return [os.fspath(x)]
    if isinstance(x, (list, tuple)) and x and all(isinstance(p, (str, os.PathLike)) for p in x):
        return [os.fspath(p) for p in x]
    return None


class Model:
    """A loaded model file (any data2vec-audio/-text/-vision head converted by d2v-convert)."""

    def __init__(self, path: str | os.PathLike):
        self._model = _call(_d2v.Model, os.fspath(path))

    modality = property(lambda self: self._model.modality, doc='"audio", "text" or "vision"')
    model_class = property(lambda self: self._model.model_class, doc="the head, e.g. Data2VecAudioForCTC")
    sampling_rate = property(lambda self: self._model.sampling_rate, doc="audio input rate in Hz (0 otherwise)")
    labels = property(lambda self: list(self._model.labels), doc="id2label")

    def audio(self, inputs, *, top_k: int = 5, hidden_states: bool = False, attentions: bool = False,
              words: Sequence[str] | str = ()) -> Result:
        """Audio file path(s) (WAV/FLAC/OGG, resampled to sampling_rate), or one or several 1-D
        float arrays already at sampling_rate. Several inputs are padded into one batch. words
        (a list, or one string of words separated by spaces): CTC transcripts use only these words
        (as d2v-audio --words)."""
        words = words.split() if isinstance(words, str) else list(words)
        paths = _paths(inputs)
        if paths is not None:
            return _result(_call(self._model.run_audio_files, paths, top_k, hidden_states, attentions, words))
        waves = [inputs] if isinstance(inputs, np.ndarray) and inputs.ndim == 1 else list(inputs)
        waves = [np.ascontiguousarray(w, dtype=np.float32) for w in waves]
        if any(w.ndim != 1 for w in waves):
            raise Error("audio arrays must be 1-D (mono samples)")
        return _result(_call(self._model.run_audio, waves, top_k, hidden_states, attentions, words))

    def text(self, text: str = "", *, pair: str = "", question: str = "", context: str = "",
             choices: Sequence[str] = (), top_k: int = 5, truncate: bool = True, max_answer_length: int = 30,
             max_new_tokens: int = 20, sample: bool = False, sample_top_k: int = 0, top_p: float = 1.0,
             temperature: float = 1.0, seed: int = 0, hidden_states: bool = False, attentions: bool = False) -> Result:
        """One text input with what the head needs: text (+ pair), question + context, text + choices."""
        return _result(_call(self._model.run_text, text, pair, question, context, list(choices), top_k, truncate,
                             max_answer_length, max_new_tokens, sample, sample_top_k, top_p, temperature, seed,
                             hidden_states, attentions))

    def image(self, inputs, *, top_k: int = 5, hidden_states: bool = False, attentions: bool = False) -> Result:
        """Image file path(s) (PNG/JPEG/BMP/GIF), or one or several H x W x 3 uint8 RGB arrays."""
        paths = _paths(inputs)
        if paths is not None:
            return _result(_call(self._model.run_image_files, paths, top_k, hidden_states, attentions))
        images = [inputs] if isinstance(inputs, np.ndarray) and inputs.ndim == 3 else list(inputs)
        images = [np.ascontiguousarray(i, dtype=np.uint8) for i in images]
        if any(i.ndim != 3 or i.shape[2] != 3 for i in images):
            raise Error("images must be H x W x 3 (RGB) uint8 arrays")
        return _result(_call(self._model.run_images, images, top_k, hidden_states, attentions))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as H x W x 3 uint8 RGB, decoded as the vision models expect (PIL's convert("RGB"))."""
    return _call(_d2v.read_image, os.fspath(path))


def set_num_threads(n: int) -> None:
    """Threads for the matrix products and parallel loops (process-wide)."""
    _d2v.set_num_threads(n)
