"""Run Django's runtests.py with crossdb in its installed apps.

Invoked as ``python wrapper.py <runtests.py> <runtests arguments>`` from the
suite's tests/ directory. runtests.py is imported as a module (its
definitions only), "crossdb" is appended to ALWAYS_INSTALLED_APPS unless
CROSSDB_SUITE_MODE is "baseline", and then its ``__main__`` block is run in
that module's namespace, so Django's own argument handling is unchanged.
"""

import importlib.util
import os
import sys

MAIN_BLOCK = '\nif __name__ == "__main__":\n'


def main() -> None:
    path = os.path.abspath(sys.argv[1])
    sys.argv = [path, *sys.argv[2:]]
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location("runtests", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["runtests"] = module
    spec.loader.exec_module(module)
    if os.environ.get("CROSSDB_SUITE_MODE", "installed") != "baseline":
        module.ALWAYS_INSTALLED_APPS.append("crossdb")
    with open(path) as source:
        text = source.read()
    start = text.index(MAIN_BLOCK)
    # Keep the line numbers of tracebacks those of runtests.py.
    block = "\n" * text[:start].count("\n") + text[start:]
    module.__dict__["__name__"] = "__main__"
    exec(compile(block, path, "exec"), module.__dict__)


if __name__ == "__main__":
    main()
