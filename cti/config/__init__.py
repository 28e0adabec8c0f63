"""The shared configuration source: every YAML file read one way, every mistake told one way.

``source`` reads a file into plain data with the line of each key, catching keys given twice
and YAML 1.1's surprises; ``validation`` checks that data against a pydantic model and turns
each error into "file:line: where: what (expected ...)". Errors leave as ``cti.errors.ConfigError``.
"""

from cti.config.source import (
    KeyPath,
    Locate,
    Problem,
    YamlDocument,
    did_you_mean,
    read_yaml,
    trap_note,
)
from cti.config.validation import (
    check_keys,
    config_error,
    describe_error,
    load_model,
    not_allowed,
    problem,
    short,
    validate_document,
    validation_problems,
)

__all__ = [
    "KeyPath",
    "Locate",
    "Problem",
    "YamlDocument",
    "check_keys",
    "config_error",
    "describe_error",
    "did_you_mean",
    "load_model",
    "not_allowed",
    "problem",
    "read_yaml",
    "short",
    "trap_note",
    "validate_document",
    "validation_problems",
]
