"""Phone numbers and phone endpoints: the one home of their shapes and normal form.

Three things every role needs and used to spell on its own:

* **Endpoints** (``PJSIP/agent1001``): the technology/resource an agent's phone is dialled at.
  Four patterns disagreed (the console accepted only PJSIP, SIP, IAX2 and Local and no ``:``;
  agent log-in accepted ``/`` in the resource but no ``+``; the call control refused ``+``;
  acd.yaml allowed ``_`` in the technology). The one kept here is the call control's, the
  most careful (it was written so that nothing can end a dialplan argument or an AMI header),
  widened by what the others accepted that is safe and real: ``+`` (``PJSIP/+4930123@trunk``)
  and ``/`` after the first character of the resource (``Local/1001@agents/n``,
  ``PJSIP/trunk/sip:1001@host``). Never accepted: ``,`` ``|`` ``&`` ``(`` ``)`` quotes ``$``
  ``;`` spaces and CR/LF, which would split ``Dial()``'s arguments, our ``agent|endpoint|ring``
  offer string, or an AMI header (manager.c reads a header to the end of its line).
* **Dialable numbers** (what a callback or a transfer may dial): ``+`` then 1-32 of
  ``0-9 * #``. ASCII digits only: ``str.isdigit`` also accepts ``"٣"`` or ``"²"``, which
  Asterisk cannot dial.
* **Normal form** for lookups (``normalise_phone``): ``030 1234`` and ``+49 30 1234`` are the
  same key when the country code is known.

Checks return the value or raise ``ValueError`` with a message for a person; each caller
translates it into its own error (a config error with a line, a 422 refusal...).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "DIALABLE_PATTERN",
    "ENDPOINT_PATTERN",
    "check_dialable",
    "check_endpoint",
    "is_dialable",
    "is_endpoint",
    "normalise_phone",
]

#: Technology (``PJSIP``, ``IAX2``, ``Local``: a letter, then letters and digits) ``/``
#: resource. Usable as a pydantic ``Field(pattern=f"^{ENDPOINT_PATTERN}$")``.
ENDPOINT_PATTERN: Final = r"[A-Za-z][A-Za-z0-9]{0,15}/[A-Za-z0-9+][A-Za-z0-9_.@:+/-]{0,79}"
#: An optional leading ``+`` and 1-32 of ``0-9 * #``.
DIALABLE_PATTERN: Final = r"\+?[0-9*#]{1,32}"

_ENDPOINT = re.compile(ENDPOINT_PATTERN)
_DIALABLE = re.compile(DIALABLE_PATTERN)
_PHONE_NOISE = re.compile(r"[\s().\-/]")
_PHONE_OK = re.compile(r"\+?[0-9]+")


def is_endpoint(value: object) -> bool:
    """Whether ``value`` is a phone endpoint like ``PJSIP/agent1001``."""
    return isinstance(value, str) and _ENDPOINT.fullmatch(value) is not None


def check_endpoint(value: object) -> str:
    """``value`` if it is an endpoint, else ``ValueError``."""
    if not is_endpoint(value):
        raise ValueError(f"phone endpoint {value!r} is not like PJSIP/agent1001")
    assert isinstance(value, str)
    return value


def is_dialable(value: object) -> bool:
    """Whether ``value`` is a number Asterisk can dial (``+``, then 0-9 * #, at most 32)."""
    return isinstance(value, str) and _DIALABLE.fullmatch(value) is not None


def check_dialable(value: object) -> str:
    """``value`` if it is dialable, else ``ValueError``."""
    if not is_dialable(value):
        raise ValueError("a number is 1-32 of 0-9 * # with an optional leading +")
    assert isinstance(value, str)
    return value


def normalise_phone(number: str, country_code: str | None = None) -> str:
    """A phone number in the form lookups compare; ``""`` if it is not a dialable number.

    - spaces and the separators ``- . ( ) /`` are dropped: ``+49 (30) 123-45`` -> ``+493012345``;
    - the international prefix ``00`` becomes ``+``: ``004930...`` -> ``+4930...``;
    - with ``country_code`` (e.g. ``"49"``), a single leading ``0`` (the national trunk prefix)
      becomes ``+49``: ``030 1234`` -> ``+49301234``, the same key as ``+49 30 1234``;
    - everything else is kept as it is: local numbers and extensions (``5551234``) only match
      the same local form; no country is ever guessed.

    Asterisk's ``unknown`` and ``anonymous`` caller IDs, and names, give ``""`` (no match).
    """
    digits = _PHONE_NOISE.sub("", number)
    if not _PHONE_OK.fullmatch(digits):
        return ""
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif country_code and digits.startswith("0"):
        digits = f"+{country_code}{digits[1:]}"
    return digits if digits.strip("+") else ""
