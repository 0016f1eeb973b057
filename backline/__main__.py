"""Command line entry point: `python -m backline <command>`."""

from backline.cli import main

raise SystemExit(main())
