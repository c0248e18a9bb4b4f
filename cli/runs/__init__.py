"""The parts of ``beaver run``: its arguments, the summary of a stored run, its text."""
