"""Helpdesk ticket -> runbook fallback scenario (DESIGN.md), by rules kept in YAML.

Pure: no I/O beyond reading the rules file once. The shipped rules are
`pipeline/data/ticket_rules.yaml`; an organisation can point at its own file with
`load_rules(path)` (or the `PIPELINE_TICKET_RULES` environment variable, which
`default_rules()` honours).

How a ticket is decided:
- every scenario has weighted *signals* (a regex, regexes that must all occur, or two terms
  near each other); a scenario's score is the highest weight among its signals that match;
- the highest score wins; on a tie the scenario listed first in the file wins (precedence);
- nothing matches -> `other`, which is itself the signal of a scenario nobody wrote a
  runbook for.

Rules file format (the shipped file holds the real vocabulary):

    version: 1
    terms:                        # reusable regex fragments, referenced as {name}
      phone: '(?:i-?phone|phone|android)'
      gone: '(?:lost|stolen|misplaced)'
    scenarios:                    # precedence order (ties go to the first listed)
      lost_device:
        signals:
          - {weight: 3, near: ['{gone}', '{phone}'], gap: 3}        # <= 3 words apart
          - {weight: 3, near: ['{phone}', '{gone}'], gap: sentence,  # same sentence,
             ordered: true}                                          # phone first
          - {weight: 1, any: ['new {phone}']}                        # one of the patterns
      unsupported_country:
        signals:
          - {weight: 2, all: ['china', 'never shows']}               # both, anywhere

Every pattern matches whole words (it is wrapped in word-boundary guards): end a pattern
with `\\w*` to match a stem. Matching ignores case and typographic apostrophes. Line breaks
inside a pattern or term are ignored (long alternations can span lines in a `|-` block),
and a space means "any run of non-word characters" (`\\W+`), so `new phone` also matches
`new-phone`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pipeline.model import Scenario
from pipeline.settings import Settings

__all__ = [
    "RULES_ENV_VAR",
    "RulesError",
    "ScenarioRule",
    "Signal",
    "TicketRules",
    "classify_ticket",
    "default_rules",
    "load_rules",
    "normalize_text",
    "scenario_scores",
]

RULES_ENV_VAR = "PIPELINE_TICKET_RULES"
_PACKAGED = "data/ticket_rules.yaml"
# Package data beside the modules (pyproject `package-data`): a plain path works from a source
# tree and an installed wheel alike (importlib.resources tripped over `pipeline` while it
# was still a namespace package).
_PACKAGED_PATH = Path(__file__).resolve().parent.parent / _PACKAGED
_TERM_REF = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_LINE_BREAK = re.compile(r"[ \t]*\r?\n[ \t]*")
_SPACES = re.compile(r" +")
_MAX_WEIGHT = 9
# `gap: sentence`: anything but a sentence end between the two patterns.
_SAME_SENTENCE = r"[^.!?;\n]*?"
_DEFAULT_GAP = 3
# Typographic quotes and odd spaces people paste from mail clients and phones.
_TEXT_FIXES = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u00a0": " ", "\u2013": "-"}
)


class RulesError(ValueError):
    """The rules file cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True, slots=True)
class Signal:
    weight: int
    pattern: re.Pattern[str]
    where: str  # e.g. "lost_device.signals[2]", for error messages and explanations

    def search(self, text: str) -> bool:
        return self.pattern.search(text) is not None


@dataclass(frozen=True, slots=True)
class ScenarioRule:
    scenario: Scenario
    signals: tuple[Signal, ...]  # strongest first, so a scenario stops at its best match
    description: str = ""


@dataclass(frozen=True, slots=True)
class TicketRules:
    scenarios: tuple[ScenarioRule, ...]  # precedence order
    origin: str  # where the rules came from (a path, or the packaged file)


def normalize_text(text: str) -> str:
    """Fold typographic quotes and odd spaces so pasted text matches the plain patterns."""
    return text.translate(_TEXT_FIXES)


def scenario_scores(text: str, rules: TicketRules) -> dict[Scenario, int]:
    """Every scenario that matches, with its score (the weight of its best signal)."""
    text = normalize_text(text)
    scores: dict[Scenario, int] = {}
    for rule in rules.scenarios:
        for signal in rule.signals:
            if signal.search(text):
                scores[rule.scenario] = signal.weight
                break
    return scores


def classify_ticket(text: str, rules: TicketRules) -> Scenario:
    """The runbook scenario of a ticket's text: highest score, ties to the first listed."""
    text = normalize_text(text)
    best: Scenario = Scenario.OTHER
    best_weight = 0
    for rule in rules.scenarios:
        for signal in rule.signals:
            if signal.weight <= best_weight:
                break  # signals are strongest first: nothing left here can win
            if signal.search(text):
                best, best_weight = rule.scenario, signal.weight
                break
    return best


def load_rules(path: str | os.PathLike[str] | None = None) -> TicketRules:
    """Read and compile a rules file; `None` reads the rules shipped with the package."""
    if path is None:
        origin = f"packaged {_PACKAGED}"
        try:
            text = _PACKAGED_PATH.read_text(encoding="utf-8")
        except OSError as exc:
            raise RulesError(
                f"cannot read the packaged ticket rules ({_PACKAGED}): {exc}"
            ) from None
    else:
        origin = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RulesError(f"cannot read ticket rules file {origin}: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"ticket rules file {origin} is not valid YAML: {exc}") from None
    return _compile(document, origin)


@lru_cache(maxsize=1)
def _cached_rules(path: str | None) -> TicketRules:
    return load_rules(path)


@lru_cache(maxsize=1)
def default_rules() -> TicketRules:
    """The rules the parser uses: `$PIPELINE_TICKET_RULES` if set, else the packaged ones
    (read once per process: reading the settings costs more than classifying a ticket;
    `default_rules.cache_clear()` reads them again)."""
    configured = Settings().ticket_rules
    return _cached_rules(str(configured) if configured else None)


# --- compiling the YAML -------------------------------------------------------------------


def _compile(document: Any, origin: str) -> TicketRules:
    def fail(message: str) -> RulesError:
        return RulesError(f"ticket rules file {origin}: {message}")

    if not isinstance(document, Mapping):
        raise fail("expected a mapping with `version`, `terms` and `scenarios` at the top")
    unknown = set(document) - {"version", "terms", "scenarios"}
    if unknown:
        raise fail(f"unknown top-level key(s): {', '.join(sorted(map(str, unknown)))}")
    if document.get("version") != 1:
        raise fail(f"unsupported `version` {document.get('version')!r} (expected 1)")
    terms = document.get("terms") or {}
    if not isinstance(terms, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in terms.items()
    ):
        raise fail("`terms` must map names to regex strings")
    scenarios = document.get("scenarios")
    if not isinstance(scenarios, Mapping) or not scenarios:
        raise fail("`scenarios` must be a non-empty mapping of scenario id -> rules")

    expanded = _expand_terms(terms, fail)
    compiled: list[ScenarioRule] = []
    for name, body in scenarios.items():
        try:
            scenario = Scenario(name)
        except ValueError:
            valid = ", ".join(s.value for s in Scenario if s is not Scenario.OTHER)
            raise fail(f"unknown scenario `{name}` (valid: {valid})") from None
        if scenario is Scenario.OTHER:
            raise fail("`other` is the fallback when nothing matches; it takes no rules")
        if not isinstance(body, Mapping) or not isinstance(body.get("signals"), list):
            raise fail(f"scenarios.{name} needs a `signals` list")
        extra = set(body) - {"signals", "description"}
        if extra:
            raise fail(f"scenarios.{name}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
        signals = [
            _compile_signal(raw, f"{name}.signals[{index}]", expanded, fail)
            for index, raw in enumerate(body["signals"])
        ]
        if not signals:
            raise fail(f"scenarios.{name}.signals is empty")
        signals.sort(key=lambda s: -s.weight)  # stable: file order within a weight
        compiled.append(ScenarioRule(scenario, tuple(signals), str(body.get("description", ""))))
    return TicketRules(tuple(compiled), origin)


def _clean(pattern: str) -> str:
    """Drop line breaks (with their indentation); a space stands for a word separator."""
    return _SPACES.sub(r"\\W+", _LINE_BREAK.sub("", pattern.strip()))


def _expand_terms(terms: Mapping[str, str], fail: Any) -> dict[str, str]:
    """Resolve `{name}` references between terms (no cycles)."""
    done: dict[str, str] = {}

    def resolve(name: str, stack: tuple[str, ...]) -> str:
        if name in done:
            return done[name]
        if name in stack:
            raise fail(f"terms refer to each other in a cycle: {' -> '.join((*stack, name))}")
        if name not in terms:
            raise fail(f"unknown term `{{{name}}}` in terms.{stack[-1]}")
        value = _TERM_REF.sub(lambda m: resolve(m.group(1), (*stack, name)), _clean(terms[name]))
        done[name] = f"(?:{value})"
        return done[name]

    for term in terms:
        resolve(term, ())
    return done


def _substitute(pattern: Any, where: str, terms: Mapping[str, str], fail: Any) -> str:
    if not isinstance(pattern, str) or not pattern.strip():
        raise fail(f"{where}: patterns must be non-empty strings, got {pattern!r}")

    def term(match: re.Match[str]) -> str:
        if match.group(1) not in terms:
            raise fail(f"{where}: unknown term `{{{match.group(1)}}}`")
        return terms[match.group(1)]

    # Whole words only: a pattern cannot start or end inside a word.
    return rf"(?<!\w)(?:{_TERM_REF.sub(term, _clean(pattern))})(?!\w)"


def _compile_signal(raw: Any, where: str, terms: Mapping[str, str], fail: Any) -> Signal:
    if not isinstance(raw, Mapping):
        raise fail(f"{where}: a signal is a mapping with one of `any`, `all`, `near`")
    kinds = [k for k in ("any", "all", "near") if k in raw]
    if len(kinds) != 1:
        raise fail(f"{where}: a signal needs exactly one of `any`, `all`, `near`")
    extra = set(raw) - {"any", "all", "near", "weight", "gap", "ordered", "note"}
    if extra:
        raise fail(f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
    weight = raw.get("weight", 1)
    if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= _MAX_WEIGHT:
        raise fail(f"{where}: `weight` must be an integer 1-{_MAX_WEIGHT}, got {weight!r}")
    kind = kinds[0]
    parts = raw[kind]
    if isinstance(parts, str):
        parts = [parts]
    if not isinstance(parts, Sequence) or not parts:
        raise fail(f"{where}: `{kind}` must be a non-empty list of patterns")
    regexes = [_substitute(p, where, terms, fail) for p in parts]

    if kind == "any":
        source = "|".join(regexes)
    elif kind == "all":
        # Every part somewhere in the text: lookaheads from the start of the text.
        source = r"\A" + "".join(rf"(?=[\s\S]*?{r})" for r in regexes)
    else:
        if len(regexes) != 2:
            raise fail(f"{where}: `near` takes exactly two patterns")
        gap = raw.get("gap", _DEFAULT_GAP)
        if gap == "sentence":
            between = _SAME_SENTENCE
        elif isinstance(gap, int) and not isinstance(gap, bool) and 0 <= gap <= 20:
            between = rf"(?:\W+\w+){{0,{gap}}}?\W+"
        else:
            raise fail(f"{where}: `gap` must be 0-20 (words between) or `sentence`, got {gap!r}")
        ordered = raw.get("ordered", False)
        if not isinstance(ordered, bool):
            raise fail(f"{where}: `ordered` must be true or false")
        first, second = regexes
        source = first + between + second
        if not ordered:
            source += "|" + second + between + first
    try:
        pattern = re.compile(source, re.IGNORECASE)
    except re.error as exc:
        raise fail(f"{where}: invalid regex ({exc}): {parts!r}") from None
    return Signal(weight, pattern, where)
