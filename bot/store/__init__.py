"""SQLite through sqlite-utils: the database and its migrations, and the who-changed index."""
