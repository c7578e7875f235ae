"""What a browser session keeps between page switches: the digit in hand, and the OIPs it computed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import streamlit as st

from core.jobs.system import JobHandle
from core.oip import search as oip
from core.runs import model_key, resolve_model_path
from pages.ui.resources import keep_maxima

# the digit last shown on the Activations page, for the Experiments page: (raw uint8 bytes, label or None, source)
CURRENT_DIGIT_KEY = "current_digit"


@dataclass
class RescuedOip:
    """An OIP found for a map by the precursor search: ``image`` ``(28, 28)`` model-input values."""

    map_index: int
    image: np.ndarray
    loss: float
    note: str = ""


@dataclass
class OipStore:
    """OIP results of one user session, keyed by model key + layer.

    ``results[(model, layer)][config.key()]`` holds every oip.OipResult computed, ``latest[(model, layer)]``
    the most recent one, ``rescued[(model, layer)][map]`` the precursor's rescues, ``current_config``
    the settings shown on the Filters/OIP page. Both pages read it.
    """

    results: dict = field(default_factory=dict)
    latest: dict = field(default_factory=dict)
    rescued: dict = field(default_factory=dict)
    current_config: dict = field(default_factory=dict)  # (model, layer) → the OIP page's current settings

    def put(self, model_key: str, result: oip.OipResult) -> None:
        keep_maxima(model_key, result)  # the test-digit scan goes to the server's one copy
        slot = (model_key, result.config.layer)
        self.results.setdefault(slot, {})[result.config.key()] = result
        self.latest[slot] = result

    def get(self, model_key: str, config: oip.OipConfig) -> oip.OipResult | None:
        result = self.results.get((model_key, config.layer), {}).get(config.key())
        if result is not None:
            self.latest[(model_key, config.layer)] = result
        return result

    def latest_result(self, model_key: str, layer: str) -> oip.OipResult | None:
        return self.latest.get((model_key, layer))

    def add_rescued(self, model_key: str, layer: str, rescued: RescuedOip) -> None:
        self.rescued.setdefault((model_key, layer), {})[int(rescued.map_index)] = rescued

    def rescued_for(self, model_key: str, layer: str) -> dict[int, RescuedOip]:
        return dict(self.rescued.get((model_key, layer), {}))


STORE_KEY = "oip_store"


def oip_store() -> OipStore:
    """This session's ``OipStore`` (created on first use)."""
    store = st.session_state.get(STORE_KEY)
    if not isinstance(store, OipStore):
        store = OipStore()
        st.session_state[STORE_KEY] = store
    return store


def store_oip_result(handle: JobHandle) -> None:
    """``on_end`` of an OIP job (Filters/OIP and Precursor pages): keep its result in the session's store."""
    oip_store().put(model_key(resolve_model_path(handle.spec.model)), handle.result)
