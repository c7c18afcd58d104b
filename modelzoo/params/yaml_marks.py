"""Reading a params file: its values, and where each key is written, read from the YAML node graph before
any value is built. YAML 1.1 reads ``1e-5`` (no dot) as a string; the loader here reads it as a float,
as YAML 1.2 and every reader of a learning rate expect.

The marks make every error ``FILE:LINE:COLUMN``. The walk follows YAML's own rules for what a
mapping holds, so that a position exists for every key the values will have:

- A merge key (``<<: *train`` or ``<<: [*a, *b]``) adds the keys of the merged mappings that the
  mapping does not write itself; of two merged mappings with one key the earlier wins, as the YAML
  merge-key spec (and PyYAML, which builds the values) says. A key written twice in one mapping is
  an error: YAML would silently keep the last.
- An alias is a reference, so nested aliases can name exponentially many values in a few lines (a
  "billion laughs" file). The values PyYAML builds share them, but every walk over the params
  (this one first) would visit each copy, so the walk stops, with the position of the value it had
  reached, once aliases have repeated more than :data:`MAX_ALIAS_VALUES` values. A real params file
  repeats a few sections' worth.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

import yaml

from modelzoo.common.errors import ParamsError

KeyPath = Tuple[Any, ...]
MERGE_TAG = "tag:yaml.org,2002:merge"
MAX_ALIAS_VALUES = 10_000


def mark_text(mark: yaml.Mark) -> str:
    return f"{mark.name}:{mark.line + 1}:{mark.column + 1}"


class _Walk:
    """Counts the values reached again through an alias, and stops past the bound or at an alias in itself."""

    def __init__(self) -> None:
        self.seen: Set[int] = set()
        self.open: Set[int] = set()  # the nodes the walk is inside
        self.repeated = 0

    def visit(self, node: yaml.Node, mark: yaml.Mark) -> None:
        """Count ``node``, reached under the key written at ``mark``."""
        if id(node) in self.open:
            raise ParamsError(f"{mark_text(mark)}: a YAML alias under this key names a value that contains it")
        if id(node) not in self.seen:
            self.seen.add(id(node))
            return
        self.repeated += 1
        if self.repeated > MAX_ALIAS_VALUES:
            raise ParamsError(
                f"{mark_text(mark)}: the YAML aliases under this key repeat more than {MAX_ALIAS_VALUES} values "
                "(aliases nested in aliases); a params file needs far fewer"
            )


def key_marks(node: yaml.Node) -> Dict[KeyPath, yaml.Mark]:
    """Where every key and list item sits in the file: ``("optimizer", "learning_rate", 0)`` -> mark.

    A mapping key's mark is where the key is written (in the merged mapping for a merged key).
    Call it before the values are built: PyYAML's constructor rewrites merged mappings in place.
    """
    return _marks(node, (), node.start_mark, _Walk())


def _marks(node: yaml.Node, prefix: KeyPath, key_mark: yaml.Mark, walk: _Walk) -> Dict[KeyPath, yaml.Mark]:
    """The marks under ``node`` (at ``prefix``, below the key written at ``key_mark``)."""
    walk.visit(node, key_mark)
    walk.open.add(id(node))
    marks: Dict[KeyPath, yaml.Mark] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in _pairs(node, prefix, key_mark, walk):
            path = (*prefix, key_node.value)
            marks[path] = key_node.start_mark
            marks.update(_marks(value_node, path, key_node.start_mark, walk))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            marks[(*prefix, index)] = item.start_mark
            marks.update(_marks(item, (*prefix, index), key_mark, walk))
    walk.open.discard(id(node))
    return marks


def _pairs(
    node: yaml.MappingNode, prefix: KeyPath, key_mark: yaml.Mark, walk: _Walk
) -> List[Tuple[yaml.Node, yaml.Node]]:
    """The (key, value) nodes of a mapping, merge keys resolved: its own keys, then merged keys it lacks."""
    own: Dict[Any, Tuple[yaml.Node, yaml.Node]] = {}
    merged: Dict[Any, Tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        if key_node.tag != MERGE_TAG:
            if key_node.value in own:
                path = ".".join(map(str, (*prefix, key_node.value)))
                raise ParamsError(f"{mark_text(key_node.start_mark)}: '{path}' is given twice")
            own[key_node.value] = (key_node, value_node)
            continue
        walk.visit(value_node, key_mark)
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if isinstance(source, yaml.MappingNode):  # anything else: building the values reports it
                walk.visit(source, key_mark)
                for pair in _pairs(source, prefix, key_mark, walk):
                    merged.setdefault(pair[0].value, pair)
    return [*own.values(), *(pair for key, pair in merged.items() if key not in own)]


class _Loader(yaml.SafeLoader):
    """Safe YAML, but ``1e-5`` is a float (YAML 1.2), not the string YAML 1.1 makes of it."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

def read_yaml(path: Path) -> Tuple[Any, Dict[KeyPath, yaml.Mark]]:
    """The file's values and the marks of its keys (named after the file, for the messages)."""
    try:
        stream = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"params file not found: {path}") from None
    loader = _Loader(stream)
    try:
        node = loader.get_single_node()
        marks = key_marks(node) if node is not None else {}  # first: building the values rewrites merges
        values = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = mark_text(mark) if mark else str(path)
        raise ParamsError(f"{where}: YAML syntax error: {error.problem or error.context}") from None
    finally:
        loader.dispose()
        stream.close()
    return values, marks


def locate(message: str, section: str, marks: Dict[KeyPath, yaml.Mark], overridden: set, path: Path) -> str:
    """The place an error message is about: the deepest written key its ``section.key[0].sub`` prefix names.

    Every ParamsError about a key begins with the key's dotted path (the schema's and each section's
    checks write them so), which is what lets one message be placed without each check knowing the file.
    """
    head = re.match(r"[\w\[\].]+", message)
    parts = re.findall(r"\w+|\[\d+\]", head.group(0) if head else "")
    key_path = tuple(int(p[1:-1]) if p.startswith("[") else p for p in parts)
    if key_path[:1] != (section,):
        key_path = (section, *key_path)
    if key_path[:2] in overridden:
        return "command line"
    for length in range(len(key_path), 0, -1):
        if key_path[:length] in marks:
            return mark_text(marks[key_path[:length]])
    return str(path)
