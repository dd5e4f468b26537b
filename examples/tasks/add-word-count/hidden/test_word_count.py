from textstats import word_count


def test_words_are_separated_by_any_whitespace():
    assert word_count("a  b\nc") == 3
    assert word_count("  leading and trailing  ") == 3
    assert word_count("tab\tseparated") == 2


def test_no_words():
    assert word_count("") == 0
    assert word_count(" \n\t ") == 0
