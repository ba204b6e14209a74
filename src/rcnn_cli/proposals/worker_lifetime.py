"""Worker processes that end with the process that started them, however it ends.

``rcnn propose --workers N`` computes images in a process pool. When the parent ends normally or by an
exception, the pool shuts its workers down; when it is killed (SIGKILL, the OOM killer, a cluster's
time limit), nothing runs in it any more, and the workers would go on waiting for work that never
comes, each holding its memory. So every worker, when it starts, asks to be ended with its parent:

- on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the moment the parent
  dies, even while the worker is deep in a C++ kernel that holds the GIL. The signal follows the
  *thread* that started the worker, so the pool must start its workers from a thread that lives as
  long as the pool: ``ProcessPoolExecutor`` starts them from the thread that calls ``submit`` (without
  ``max_tasks_per_child``), here the main thread;
- elsewhere, a daemon thread that looks at the parent pid twice a second and exits when it changed
  (the worker was handed to another parent).

A parent that died before the worker got this far is seen at once by comparing the parent pid.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

#: From <linux/prctl.h>.
PR_SET_PDEATHSIG = 1
POLL_SECONDS = 0.5


def end_with_parent(parent_pid: int) -> None:
    """Make this process end when its parent ``parent_pid`` ends (see the module docstring)."""
    if not (sys.platform.startswith("linux") and _kernel_kills_on_parent_death()):
        threading.Thread(target=_watch_parent, args=(parent_pid,), name="watch-parent", daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died while this process started
        os._exit(1)


def _kernel_kills_on_parent_death() -> bool:
    """``prctl(PR_SET_PDEATHSIG, SIGKILL)``; False when the C library or the call is not there."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(POLL_SECONDS)
    os._exit(1)  # no cleanup: the parent that would collect the results is gone
