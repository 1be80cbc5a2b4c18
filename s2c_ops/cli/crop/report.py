"""What ``s2c crop`` tells: one line per input on stderr (every input on a terminal, the failed ones
otherwise), the progress bar, the records on stdout (when it is not a terminal and there is no --json) and
in the journal."""
import os
import sys
from typing import List, Tuple

from ..errors import printable
from .journal import Journal
from .record import Record, lines


def outcome_line(records: List[Record]) -> Tuple[bool, str]:
    """(ok, one line) for an input's records."""
    ok, line = _outcome(records)
    return ok, printable(line)


def _outcome(records: List[Record]) -> Tuple[bool, str]:
    file = records[0].file
    errors = [r for r in records if not r.ok]
    if errors and len({r.error for r in errors}) == 1 and len(errors) == len(records):
        msg = errors[0].error
        prefix = f"ratio {errors[0].ratio_text}: "
        if len(records) > 1 and msg.startswith(prefix):
            msg = msg[len(prefix):]
        return False, f"error {file}: {msg}"
    parts = []
    for r in errors + [r for r in records if r.ok]:  # the failures first
        if not r.ok:
            parts.append(r.error)
        elif r.outputs:
            parts.append(f"{r.ratio_text} -> {', '.join(r.outputs)}")
        else:
            box = ", ".join(f"{v:.0f}" for v in r.boxes[0]) if r.boxes else ""
            parts.append(f"{r.ratio_text} [{box}] {r.scores[0]:.3f}" if r.boxes else r.ratio_text)
    return not errors, ("error " if errors else "ok ") + f"{file}: " + "; ".join(parts)


class Reporter:
    """Takes each input's records, in input order: messages, stdout, the journal."""

    def __init__(self, show_bar: bool, to_stdout: bool, journal: Journal) -> None:
        self.tty = sys.stderr.isatty()
        self.to_stdout = to_stdout
        self.journal = journal
        self.failed_inputs = 0
        self.count = 0
        self.bar = None
        if self.tty and show_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=None, unit="image", desc="s2c crop", file=sys.stderr, dynamic_ncols=True)

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr, flush=True)

    def add(self, records: List[Record]) -> None:
        self.journal.append(records)
        self.count += 1
        ok, line = outcome_line(records)
        if not ok:
            self.failed_inputs += 1
        if self.tty or not ok:
            self.message(line)
        if self.to_stdout:
            try:
                sys.stdout.write(lines(records))
                sys.stdout.flush()
            except BrokenPipeError:  # the reader left (e.g. | head): keep working, stop printing
                self.to_stdout = False
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        """Closes the bar and the journal (synced: an error doing so is the journal's ``error``)."""
        if self.bar is not None:
            self.bar.close()
        self.journal.close()

    def __enter__(self) -> "Reporter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
