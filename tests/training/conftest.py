import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("ops_standin", Path(__file__).parents[1] / "models" / "ops_standin.py")
ops_standin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ops_standin)
ops_standin.install_if_missing()
