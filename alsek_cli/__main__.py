from __future__ import annotations

from alsek_cli.main import main

main()
