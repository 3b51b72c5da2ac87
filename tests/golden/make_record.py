"""Write tests/golden/record.json from the code on the import path: `python tests/golden/make_record.py [NAME ...]`.

Re-make a record only in the commit that changes behaviour on purpose, and say why in its message.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from runs import RECORD, RUNS, host, run


def main(names: list[str]) -> None:
    torch.set_num_threads(1)
    record: dict[str, Any] = json.loads(RECORD.read_text()) if RECORD.exists() else {"host": host(), "runs": {}}
    for name in names or list(RUNS):
        with tempfile.TemporaryDirectory() as folder:
            record["runs"][name] = run(name, Path(folder))
        print(f"{name}: {len(record['runs'][name]['train'])} steps", file=sys.stderr)
    record["host"] = host()
    RECORD.write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
