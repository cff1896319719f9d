"""Developer scripts. A package only so that ``scripts.devstack`` (the processes of a dev,
test or bench stack) and ``scripts.people`` (its users: Python clients over the network,
browser users, seeded history) import from the repository root; the other files run as
scripts."""
