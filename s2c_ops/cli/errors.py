"""How the commands end on an error. Exit status of every command: 0 success; 2 a usage error (argparse's,
a missing optional library the options need, a path given that does not exist); 1 a failure of the model,
the data or the run (an out-of-memory error among them), with one line naming it; 130 when Ctrl-C stops
it. ``s2c crop`` adds its own (see its help)."""
import argparse
import sys
from typing import Callable


class UsageError(Exception):
    """Options that cannot run together, found where they are read (exit status 2, one line)."""


class Failure(Exception):
    """A run that cannot go on, said in one line (exit status 1)."""


#: Optional libraries a command may need, and the package extra that installs each.
EXTRAS = {"kornia": "kornia"}


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def missing_library(error: ImportError) -> str:
    """One line for an ImportError: its message, and the install command when the message has none."""
    text = _first_line(error)
    if "pip install" in text:
        return text
    name = (error.name or "").split(".")[0]
    target = f"'s2cnet[{EXTRAS[name]}]'" if name in EXTRAS else (name or "the missing library")
    return f"{text}: install it with pip install {target}"


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace, prog: str) -> int:
    """``func(args)``'s exit status, its errors turned into one line on stderr and an exit status (see the
    module docstring); other exceptions (bugs) keep their traceback."""
    try:
        return func(args)
    except KeyboardInterrupt:  # Ctrl-C before a command's own handling of it (loading the model, say)
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except (UsageError, Failure) as e:
        print(f"{prog}: error: {_first_line(e)}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1
    except ImportError as e:
        print(f"{prog}: error: {missing_library(e)}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"{prog}: error: {_first_line(e)}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError, OSError, MemoryError) as e:
        print(f"{prog}: error: {type(e).__name__}: {_first_line(e)}", file=sys.stderr)
        return 1
