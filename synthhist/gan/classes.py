"""The one class validator: a class given by index or by name, checked against a network's classes."""

from __future__ import annotations

from synthhist.errors import UserError


def resolve_class(net, value: int | str | None, what: str = "--class") -> int | None:
    """Class index of `value` (an index, or a class name matched case-insensitively) for net; None stays None.

    net: anything with c_dim and class_names (GanNetwork). Raises one-line UserError naming the classes.
    """
    if value is None:
        return None
    c_dim, names = int(net.c_dim), list(net.class_names or [])
    if c_dim == 0:
        raise UserError(f"{what} was given but the network is unconditional")
    listing = ", ".join(f"{k} {n}" for k, n in enumerate(names)) if names else f"0 to {c_dim - 1}"
    text = str(value).strip()
    if isinstance(value, int) or text.lstrip("-").isdigit():
        k = int(text)
        if not 0 <= k < c_dim:
            raise UserError(f"{what}: class {k} is out of range: the network has {c_dim} classes (0 to {c_dim - 1})"
                            + (f": {listing}" if names else ""))
        return k
    matches = [k for k, n in enumerate(names) if n.lower() == text.lower()]
    if not matches:
        known = f"its classes are {listing}" if names else f"it has no class names; use an index, {listing}"
        raise UserError(f"{what}: {text!r} is not a class of the network: {known}")
    return matches[0]
