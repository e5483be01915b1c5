"""The composition root: configuration, database wiring, the Flask app, the CLI and the migrations.

Only this package imports the bounded contexts; ``queue_core`` and the contexts never import it.
"""
