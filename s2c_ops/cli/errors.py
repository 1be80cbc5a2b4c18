"""How the commands end on an error. Exit status of every command: 0 success; 2 a usage error (argparse's,
a missing optional library the options need, a path given that does not exist); 1 a failure of the model,
the data or the run (an out-of-memory error among them), with one line naming it; 130 when Ctrl-C stops
it. ``s2c crop`` adds its own (see its help)."""
import argparse
import signal
import sys
import threading
from typing import Callable


class UsageError(Exception):
    """Options that cannot run together, found where they are read (exit status 2, one line)."""


class Failure(Exception):
    """A run that cannot go on, said in one line (exit status 1)."""


#: Optional libraries a command may need, and the package extra that installs each.
EXTRAS = {"kornia": "kornia"}


def printable(text: str) -> str:
    """``text`` with its control characters escaped: a per-input line naming a file whose name holds a
    newline stays one line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


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


class _Interrupts:
    """Whether Ctrl-C came during the command. A library may swallow the KeyboardInterrupt it raises (one
    raised inside ``import triton``, which torch's first import of torchvision makes, comes back as an
    ImportError that torch catches), so the command would go on as if it never came."""

    seen = False

    @classmethod
    def handler(cls, signum, frame):
        cls.seen = True
        raise KeyboardInterrupt


def raise_if_interrupted() -> None:
    """Raises KeyboardInterrupt when Ctrl-C came during the command, even where a library swallowed it
    (called where the start-up ends: the model loaded)."""
    if _Interrupts.seen:
        raise KeyboardInterrupt


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace, prog: str) -> int:
    """``func(args)``'s exit status, its errors turned into one line on stderr and an exit status (see the
    module docstring); other exceptions (bugs) keep their traceback."""
    watch = threading.current_thread() is threading.main_thread() \
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    _Interrupts.seen = False
    if watch:
        signal.signal(signal.SIGINT, _Interrupts.handler)
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
    finally:
        if watch:
            signal.signal(signal.SIGINT, signal.default_int_handler)
