"""The shared workspace layer: what the runner, the benchmarks and the archive all do to trees on the host.

`git` runs every git call of the harness safely, `trees` copies a repository into a scratch workdir, `diffs`
records a workdir's baseline and takes (and applies) its diff, and `environments` builds the virtual environments
agents and problems run with. It knows nothing of the layers above it (runner, loop, archive, benchmarks).
"""
