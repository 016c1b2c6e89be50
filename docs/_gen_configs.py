"""Regenerate the key table of docs/configs.md: python docs/_gen_configs.py > /tmp/table.md"""

from prm_selfreward.config import describe
from prm_selfreward.run_config import RunConfig

for key, default, help_ in describe(RunConfig):
    if default == "":
        print(f"| **`{key}`** | | {help_} |")
    else:
        print(f"| `{key}` | `{default}` | {help_.replace('|', '/')} |")
