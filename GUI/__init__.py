"""ReID Video Search desktop app (PySide6). Start it with ``cd GUI; python main.py``."""
