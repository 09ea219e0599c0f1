"""How long to wait before trying again, as a function of how many times it
already went wrong ("incidents"). Used for task retries and idle consumers.

A backoff is stored inside each message as plain ``settings`` (algorithm name
plus parameters), so a worker on another host rebuilds the same one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from alsek_core.errors import ValidationError


class Backoff(ABC):
    """Clamp a formula between ``floor`` and ``ceiling`` (ms). With
    ``zero_override``, zero incidents always means no wait."""

    def __init__(
        self,
        floor: int | None = 60_000,
        ceiling: int | None = 3_600_000,
        zero_override: bool = True,
    ) -> None:
        if floor is not None and ceiling is not None and floor > ceiling:
            raise ValidationError(f"backoff floor {floor} is above its ceiling {ceiling}")
        self.floor = floor
        self.ceiling = ceiling
        self.zero_override = zero_override

    @abstractmethod
    def formula(self, incidents: int) -> float: ...

    @property
    @abstractmethod
    def parameters(self) -> dict[str, Any]: ...

    def get(self, incidents: int) -> int:
        if incidents <= 0 and self.zero_override:
            return 0
        value = self.formula(incidents)
        if self.floor is not None:
            value = max(value, self.floor)
        if self.ceiling is not None:
            value = min(value, self.ceiling)
        return int(value)

    @property
    def settings(self) -> dict[str, Any]:
        return {"algorithm": type(self).__name__, "parameters": self.parameters}

    def _limits(self) -> dict[str, Any]:
        return {"floor": self.floor, "ceiling": self.ceiling, "zero_override": self.zero_override}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.parameters.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Backoff) and self.settings == other.settings

    def __hash__(self) -> int:
        return hash(repr(self))


class ConstantBackoff(Backoff):
    def __init__(
        self,
        constant: int = 60_000,
        floor: int | None = 60_000,
        ceiling: int | None = 3_600_000,
        zero_override: bool = True,
    ) -> None:
        super().__init__(floor, ceiling, zero_override)
        self.constant = constant

    def formula(self, incidents: int) -> float:
        return self.constant

    @property
    def parameters(self) -> dict[str, Any]:
        return {"constant": self.constant, **self._limits()}


class LinearBackoff(Backoff):
    def __init__(
        self,
        factor: int = 10_000,
        floor: int | None = 60_000,
        ceiling: int | None = 3_600_000,
        zero_override: bool = True,
    ) -> None:
        super().__init__(floor, ceiling, zero_override)
        self.factor = factor

    def formula(self, incidents: int) -> float:
        return self.factor * incidents

    @property
    def parameters(self) -> dict[str, Any]:
        return {"factor": self.factor, **self._limits()}


class ExponentialBackoff(Backoff):
    def __init__(
        self,
        base: int = 4,
        factor: int = 10_000,
        floor: int | None = 60_000,
        ceiling: int | None = 3_600_000,
        zero_override: bool = True,
    ) -> None:
        super().__init__(floor, ceiling, zero_override)
        self.base = base
        self.factor = factor

    def formula(self, incidents: int) -> float:
        return float(self.factor * self.base ** min(incidents, 64))

    @property
    def parameters(self) -> dict[str, Any]:
        return {"base": self.base, "factor": self.factor, **self._limits()}


def no_backoff() -> ConstantBackoff:
    """What ``backoff=None`` means: retry at once."""
    return ConstantBackoff(constant=0, floor=0, ceiling=0, zero_override=True)


ALGORITHMS: dict[str, type[Backoff]] = {
    cls.__name__: cls for cls in (ConstantBackoff, LinearBackoff, ExponentialBackoff)
}


_BUILT: dict[tuple[Any, ...], Backoff] = {}


def settings2backoff(settings: dict[str, Any] | None) -> Backoff:
    """The backoff stored settings describe; built once per distinct settings,
    since every message of a task carries the same ones."""
    if settings is None:
        return no_backoff()
    try:
        key = (settings["algorithm"], *settings["parameters"].items())
        found = _BUILT.get(key)
    except (KeyError, TypeError, AttributeError):  # malformed or unhashable: build to explain
        key, found = None, None
    if found is None:
        try:
            found = ALGORITHMS[settings["algorithm"]](**settings["parameters"])
        except (KeyError, TypeError) as exc:
            raise ValidationError(f"invalid backoff settings {settings!r}: {exc}") from exc
        if key is not None and len(_BUILT) < 1024:
            _BUILT[key] = found
    return found
