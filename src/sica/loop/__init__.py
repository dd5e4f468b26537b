"""The self-improvement loop: utility of a version, selection policies, and (to come) the iteration itself."""
