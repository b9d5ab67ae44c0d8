#!/usr/bin/env python3
"""Turns the ```sql blocks of Markdown runbooks into one psql script, in document order.

Before each block the script echoes "== <file>: <section> (block N)", so a run shows how far
it got; run it with ON_ERROR_STOP and it stops at the first failing statement, naming it.
Usage: runbook_sql.py RUNBOOK.md... > runbook.psql
"""

import sys


def blocks(lines):
    """(section, number within the section, first line, lines) of each ```sql block."""
    section, block, n = "(top)", [], 0
    fence = None  # the info string of the open fence ("sql", "sh", ...), with its line
    for number, line in enumerate(lines, 1):
        if fence is None:
            if line.startswith("```"):
                fence, block = (line[3:].strip(), number), []
            elif line.startswith("#"):
                section, n = line.lstrip("#").strip(), 0
        elif line.strip() == "```":
            if fence[0] == "sql":
                n += 1
                yield section, n, fence[1], block
            fence = None
        else:
            block.append(line)
    if fence is not None:
        sys.exit(f"unclosed ``` block at line {fence[1]}")


def main():
    for path in sys.argv[1:]:
        with open(path) as f:
            lines = f.read().splitlines()
        count = 0
        for section, n, _, block in blocks(lines):
            count += 1
            label = f"{path.split('/')[-1]}: {section} (block {n})".replace("'", "''")
            print(f"\\echo '== {label}'")
            print("\n".join(block))
        if count == 0:
            sys.exit(f"{path}: no ```sql blocks found")


if __name__ == "__main__":
    main()
