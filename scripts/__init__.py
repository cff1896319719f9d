"""Developer scripts. A package only so that ``scripts.devstack`` (the processes of a dev,
test or bench stack) imports from the repository root; the other files run as scripts."""
