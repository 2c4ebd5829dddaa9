"""Runs the Python blocks of one page in one namespace, as the parent sends them.

Protocol on stdin: a line with the byte length of a block, then the block. After each block
it prints the marker line (its first argument) and 0 or 1 (1: the traceback is above it).
Run by _page_runner.py in the page's folder, with the page's environment.
"""

import os
import sys
import traceback

marker = sys.argv[1]
# as `python file.py` run in the page's folder would: its modules import (not this file's folder's)
sys.path[0] = os.getcwd()
namespace = {"__name__": "__main__"}
while True:
    header = sys.stdin.buffer.readline()
    if not header:
        break
    length, _, where = header.decode().strip().partition(" ")
    code = sys.stdin.buffer.read(int(length)).decode()
    status = 0
    try:
        exec(compile(code, where, "exec"), namespace)
    except BaseException:  # a block's SystemExit is a failure too
        traceback.print_exc()
        status = 1
    sys.stderr.flush()
    print(f"\n{marker} {status}", flush=True)
