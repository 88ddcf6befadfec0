"""Evaluation functions run by the ``eval`` command, chosen by ``eval_func`` with keyword arguments from ``eval:``.

Each is ``fn(model, datamodule, trainer, **kwargs)``; the CLI supplies the first three. To add one, write
``affectlab/runs/evaluation/<name>.py`` with a function of that name and list it in ``EVALUATIONS``.
"""

from __future__ import annotations

import inspect
from argparse import ArgumentError
from typing import Any, Callable

from jsonargparse import ArgumentParser

from affectlab.runs.evaluation.examine_incorrectly_classified_images import examine_incorrectly_classified_images
from affectlab.runs.evaluation.inspect_batch_inputs import inspect_batch_inputs
from affectlab.errors import ConfigError

EVALUATIONS: dict[str, Callable[..., Any]] = {
    fn.__name__: fn for fn in (inspect_batch_inputs, examine_incorrectly_classified_images)
}
_SUPPLIED = ("model", "datamodule", "trainer")


def check_evaluation(name: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Fail before any training if the evaluation or its arguments are wrong; return the arguments typed as the
    function's signature says (``--eval.num_samples 3`` arrives as a string)."""
    if name is None:
        raise ConfigError(f"eval_func: the commands include 'eval' but no eval_func is set; choose one of {sorted(EVALUATIONS)}")
    if name not in EVALUATIONS:
        raise ConfigError(f"eval_func: unknown evaluation {name!r}; choose one of {sorted(EVALUATIONS)}")
    parameters = inspect.signature(EVALUATIONS[name]).parameters
    accepted = [p for p in parameters if p not in _SUPPLIED]
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(f"eval.{key}: {name} takes no argument {key!r}; it accepts {accepted}")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_function_arguments(EVALUATIONS[name], skip=set(_SUPPLIED))
    try:
        typed = parser.parse_object(kwargs)
    except ArgumentError as error:
        raise ConfigError(f"eval: wrong arguments for {name}: {error}") from None
    return {key: value for key, value in typed.as_dict().items() if key in accepted}


def run_evaluation(name: str, kwargs: dict[str, Any], model: Any, datamodule: Any, trainer: Any) -> Any:
    return EVALUATIONS[name](model, datamodule, trainer, **check_evaluation(name, kwargs))
