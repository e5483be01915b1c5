"""Small runnable programs, one claim of the inverted task-queue pattern each (see README.md here)."""
