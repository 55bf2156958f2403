"""Find the HTTP and timer functions of a v2 `function_app.py` through azure.functions' own metadata."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func

from devhost.routing import RouteTemplate, RouteTemplateError
from devhost.schedules import Schedule, ScheduleError, parse_schedule, resolve_settings

ALL_METHODS = ("GET", "POST", "DELETE", "HEAD", "PATCH", "PUT", "OPTIONS")


class IndexingError(RuntimeError):
    """The function app cannot be indexed; the message says why."""


@dataclass(frozen=True)
class HttpFunction:
    """One HTTP-triggered function: where it listens and how to call it."""

    name: str
    route: str  # the template as declared, without the route prefix
    template: RouteTemplate  # prefix + route
    methods: tuple[str, ...] | None  # None: every method, like the host when `methods` is omitted
    auth_level: str
    user_function: Callable[..., Any]
    trigger_arg: str
    output_arg: str  # "$return" or the name of a func.Out[HttpResponse] parameter
    context_arg: str | None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)

    def allows(self, method: str) -> bool:
        return self.methods is None or method.upper() in self.methods


@dataclass(frozen=True)
class TimerFunction:
    """One timer-triggered function: its schedule (settings resolved) and how to call it."""

    name: str
    schedule_expression: str  # as declared, e.g. "%ReconcileSchedule%"
    schedule: Schedule
    run_on_startup: bool
    user_function: Callable[..., Any]
    trigger_arg: str
    context_arg: str | None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)


@dataclass(frozen=True)
class FunctionIndex:
    """The served functions (most specific route first), the timers, and the functions not run here."""

    functions: tuple[HttpFunction, ...]
    skipped: tuple[str, ...]  # "name (reason)" for functions with other triggers
    timers: tuple[TimerFunction, ...] = ()

    def timer(self, name: str) -> TimerFunction | None:
        """The timer function of that name, compared case-insensitively like the host's admin API."""
        return next((timer for timer in self.timers if timer.name.lower() == name.lower()), None)

    def http_function(self, name: str) -> HttpFunction | None:
        return next((function for function in self.functions if function.name.lower() == name.lower()), None)


def import_function_app(app_dir: Path) -> ModuleType:
    """Import `function_app` from app_dir, the way the Python worker does (app_dir first on sys.path)."""
    if not (app_dir / "function_app.py").is_file():
        raise IndexingError(f"no function_app.py in {app_dir}")
    sys.path.insert(0, str(app_dir))
    sys.modules.pop("function_app", None)
    try:
        return importlib.import_module("function_app")
    except Exception as exc:  # the app's own module code failed: show where, as the worker does
        details = "".join(traceback.format_exception(exc))
        raise IndexingError(f"importing {app_dir / 'function_app.py'} failed:\n{details}") from exc


def find_function_register(module: ModuleType) -> func.FunctionRegister:
    """The single FunctionApp (or other FunctionRegister) at the module's top level."""
    registers = [value for value in vars(module).values() if isinstance(value, func.FunctionRegister)]
    if len(registers) != 1:
        found = "no" if not registers else f"{len(registers)}"
        raise IndexingError(
            f"{module.__file__}: expected exactly one FunctionApp at module level, found {found}"
        )
    return registers[0]


def _enum_text(value: Any) -> str:
    return str(getattr(value, "value", value))


def _context_parameter(user_function: Callable[..., Any], taken: set[str]) -> str | None:
    for parameter in inspect.signature(user_function).parameters.values():
        if parameter.name in taken:
            continue
        if parameter.name == "context" or parameter.annotation in (func.Context, "func.Context", "Context"):
            return parameter.name
    return None


def _http_function(function: Any, route_prefix: str) -> HttpFunction:
    trigger = function.get_trigger()
    name = function.get_function_name()
    route = (trigger.route or name).strip("/")
    outputs = [binding for binding in function.get_bindings() if binding.type == "http"]
    output_arg = outputs[0].name if outputs else "$return"
    others = [
        binding.type
        for binding in function.get_bindings()
        if binding is not trigger and binding.type not in ("http", "httpTrigger")
    ]
    if others:
        raise IndexingError(
            f"function {name}: bindings {', '.join(others)} are not supported by the dev host"
        )
    user_function = function.get_user_function()
    taken = {trigger.name, output_arg}
    try:
        template = RouteTemplate.parse(f"{route_prefix}/{route}" if route_prefix else route)
    except RouteTemplateError as exc:
        raise IndexingError(f"function {name}: {exc}") from exc
    methods = tuple(_enum_text(method).upper() for method in trigger.methods) if trigger.methods else None
    return HttpFunction(
        name=name,
        route=route,
        template=template,
        methods=methods,
        auth_level=_enum_text(trigger.auth_level).upper(),
        user_function=user_function,
        trigger_arg=trigger.name,
        output_arg=output_arg,
        context_arg=_context_parameter(user_function, taken),
    )


def _timer_schedule(name: str, declared: str, environ: Mapping[str, str]) -> Schedule:
    try:
        resolved, settings = resolve_settings(declared, environ)
    except ScheduleError as exc:
        raise IndexingError(f"function {name}: schedule {declared!r}: {exc}") from exc
    try:
        return parse_schedule(resolved)
    except ScheduleError as exc:
        source = f" (from app setting {', '.join(settings)})" if settings else ""
        raise IndexingError(f"function {name}: schedule {resolved!r}{source} is not valid: {exc}") from exc


def _timer_function(function: Any, environ: Mapping[str, str]) -> TimerFunction:
    trigger = function.get_trigger()
    name = function.get_function_name()
    others = [binding.type for binding in function.get_bindings() if binding is not trigger]
    if others:
        raise IndexingError(
            f"function {name}: bindings {', '.join(others)} are not supported by the dev host"
        )
    # The binding as the host reads it (function.json's shape): schedule, runOnStartup.
    binding = trigger.get_dict_repr()
    declared = str(binding.get("schedule") or "")
    user_function = function.get_user_function()
    return TimerFunction(
        name=name,
        schedule_expression=declared,
        schedule=_timer_schedule(name, declared, environ),
        run_on_startup=bool(binding.get("runOnStartup")),
        user_function=user_function,
        trigger_arg=trigger.name,
        context_arg=_context_parameter(user_function, {trigger.name}),
    )


def index_functions(
    register: func.FunctionRegister, route_prefix: str, environ: Mapping[str, str] = os.environ
) -> FunctionIndex:
    """Index every function of the app: HTTP and timer functions are run, the others listed as skipped.

    Timer schedules are resolved from `environ` (app settings) here, so a bad one stops the start."""
    try:
        functions = register.get_functions()
    except (ValueError, TypeError) as exc:  # azure.functions' own validation (duplicate names, bad bindings)
        raise IndexingError(f"azure.functions rejected the app: {exc}") from exc
    served: list[HttpFunction] = []
    timers: list[TimerFunction] = []
    skipped: list[str] = []
    for function in functions:
        trigger_type = getattr(function.get_trigger(), "type", "no")
        if function.is_http_function() and trigger_type == "httpTrigger":
            served.append(_http_function(function, route_prefix))
        elif trigger_type == "timerTrigger":
            timers.append(_timer_function(function, environ))
        else:
            skipped.append(f"{function.get_function_name()} ({trigger_type} trigger)")
    served.sort(key=lambda item: item.template.precedence)
    return FunctionIndex(tuple(served), tuple(skipped), tuple(timers))
