"""Synthetic client files (ENRLMT, NON-FIN-BDL, SUPPLFWD) for the phone-compliance pipeline.

`generate` writes a dataset in the reference shape; `sample` a small one plus a plain-CSV
preview. Both return the manifest (files, counts, planted cases, dirty input).
"""

from datagen.generator import generate, sample
from datagen.world import PLANTED_CASES

__all__ = ["PLANTED_CASES", "generate", "sample"]
