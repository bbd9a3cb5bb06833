"""Qt widgets: the main window, panels and dialogs. The only package that imports PySide6 widgets."""
