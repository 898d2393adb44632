"""The text plugin's hooks (filled in below)."""

from __future__ import annotations

EMBER_CONTRACT = 1
