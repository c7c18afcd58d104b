"""The heads this zoo trains, one registered :class:`HeadSpec` each (see :mod:`modelzoo.heads.spec`).

Importing the package registers the built-in heads; ``build_task(params)`` is how the loop gets
``model.head``'s task.
"""

from modelzoo.heads import sequence_classification, token_classification  # noqa: F401  (they register themselves)
from modelzoo.heads.spec import HeadSpec, head_names, head_spec, register_head, unregister_head
from modelzoo.heads.task import RunSections, Task


def build_task(params: RunSections) -> Task:
    """The task of ``params.model.head``, with its model class."""
    spec = head_spec(params.model.head)
    return spec.task_class(params, spec.model_class)


__all__ = ["HeadSpec", "RunSections", "Task", "build_task", "head_names", "head_spec", "register_head", "unregister_head"]
