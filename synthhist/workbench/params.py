"""Request parameters of the workbench API, validated by pydantic (bad values -> 422 with a message)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from synthhist.seeds import MAX_SEED

MAX_CLASSES = 4096
MAX_LAYERS_TEXT = 600


class ImageParams(BaseModel):
    """What makes one generator image: seed, classes, blending, truncation and noise."""

    seed: int = Field(0, ge=0, le=MAX_SEED, description="latent seed (numpy RandomState)")
    mode: Literal["class", "blend", "layers"] = Field(
        "class", description="class: class A only; blend: class blending A->B by t; layers: layer blending A/B by f")
    cls: int | None = Field(None, ge=0, lt=MAX_CLASSES, description="class A (start class); none if unconditional")
    end: int | None = Field(None, ge=0, lt=MAX_CLASSES, description="class B (end class) for blend and layers modes")
    t: float = Field(0.0, ge=0.0, le=1.0, description="class-blend position: 0 = class A, 1 = class B")
    layers: str = Field("", max_length=MAX_LAYERS_TEXT, pattern=r"^(\d{1,4}(,\d{1,4})*)?$",
                        description="comma-separated ws indices mixed in layers mode, e.g. 0,1,2,3")
    f: float = Field(0.5, ge=0.0, le=1.0, description="layer-blend mix fraction of class B")
    psi: float = Field(1.0, ge=-2.0, le=2.0, description="truncation psi")
    noise: Literal["const", "random", "none"] = Field("const", description="noise mode")

    def layer_list(self) -> list[int]:
        """The ws indices of `layers` as ints (sorted, unique)."""
        return sorted({int(x) for x in self.layers.split(",")}) if self.layers else []


class CurveParams(BaseModel):
    """The classifier's prediction over the class-blend slider, for one seed."""

    seed: int = Field(0, ge=0, le=MAX_SEED)
    cls: int = Field(0, ge=0, lt=MAX_CLASSES, description="start class")
    end: int = Field(1, ge=0, lt=MAX_CLASSES, description="end class")
    psi: float = Field(1.0, ge=-2.0, le=2.0)
    noise: Literal["const", "random", "none"] = "const"
    steps: int = Field(21, ge=2, le=101, description="number of blend positions, 0 and 1 included")


class LoadRequest(BaseModel):
    """Files to load, chosen in the page from the allowed folders."""

    network: str | None = Field(None, min_length=1, max_length=4096)
    classifier: str | None = Field(None, min_length=1, max_length=4096)
