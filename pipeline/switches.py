"""The one parser of on/off settings given as environment variables (`NER_WARM_START=yes`).

Strict: true/false, 1/0, yes/no, on/off (any case, surrounding spaces ignored); anything else,
the empty string included, is an error naming the variable. A lenient parser once read every
value but "", "0" and "false" as on, so `NER_WARM_START=no` turned warm start on and
`NER_NO_BASELINE=off` turned the regression gate off.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["FALSE_WORDS", "TRUE_WORDS", "parse_switch", "switch_from_environment"]

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def parse_switch(name: str, value: str) -> bool:
    """True or False from one of `TRUE_WORDS` / `FALSE_WORDS`.

    Raises:
        ValueError: for any other value, naming `name`.
    """
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(
        f"Invalid value for `{name}`. Expected one of {'/'.join(TRUE_WORDS)} (on) or "
        f"{'/'.join(FALSE_WORDS)} (off). Received: {name}={value!r}"
    )


def switch_from_environment(environ: Mapping[str, str], variable: str) -> bool:
    """The switch `variable` of `environ`: off when unset, else `parse_switch`."""
    value = environ.get(variable)
    return False if value is None else parse_switch(variable, value)
