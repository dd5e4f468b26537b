"""Small statistics over texts and lists of numbers."""


def mean(values):
    return sum(values) / len(values)
