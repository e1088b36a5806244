from __future__ import annotations

from deposit_services.cli import main

raise SystemExit(main())
