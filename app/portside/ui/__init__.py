"""The Textual dashboard: imports model, query and view, never psutil."""
