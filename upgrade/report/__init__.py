"""What people read: tables, recaps, progress, Markdown."""
