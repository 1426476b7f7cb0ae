"""The console exporters' output (JSON objects printed one after another) as Python objects."""

from __future__ import annotations

import json
from typing import Any


def json_objects(text: str, *, strict: bool = True) -> list[Any]:
    """Every JSON object in ``text``, in order. A stretch that is not JSON raises, unless not
    ``strict``: then the rest of its line is kept as a string (someone else printed it)."""
    decoder, pos, found = json.JSONDecoder(), 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return found
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            if strict:
                raise
            end = text.find("\n", pos)
            end = len(text) if end == -1 else end
            found.append(text[pos:end])
            pos = end
            continue
        found.append(obj)
