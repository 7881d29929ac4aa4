#!/usr/bin/env python3
"""Reduced-precision test fixtures: bf16 and q8 re-writes of three small f32 fixtures.

Usage::

    python3 weights_tools/make_precision_fixtures.py

Writes tests/fixtures/precision/{text,audio,vision}_{bf16,q8}.gguf with ``convert.py --from-gguf``
from the committed f32 fixtures named in SOURCES (so no checkpoint and no torch is needed);
tests/test_precision.cpp compares them with their f32 sources.
"""

import os
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import convert  # noqa: E402

FIXTURES = os.path.join(HERE, "..", "tests", "fixtures")
SOURCES = {
    "text": "text/model_absolute/model.gguf",
    "audio": "audio/model_base/model.gguf",
    "vision": "vision/models/model_base/model.gguf",
}


def main() -> int:
    out_dir = os.path.join(FIXTURES, "precision")
    os.makedirs(out_dir, exist_ok=True)
    for modality, rel in SOURCES.items():
        for outtype in ("bf16", "q8"):
            convert.convert_from_gguf(os.path.join(FIXTURES, rel), os.path.join(out_dir, f"{modality}_{outtype}.gguf"),
                                      outtype)
    return 0


if __name__ == "__main__":
    sys.exit(main())
