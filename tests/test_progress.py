"""PartBar: one tick per part with its name, results passed through, silent when off."""

import pytest

from hystax.progress import PartBar


def test_part_bar_ticks_names_and_passes_results(capsys):
    with PartBar(2, "job") as part:
        assert part("first", lambda a, b=0: a + b, 1, b=2) == 3
        assert part("second", str.upper, "x") == "X"
    err = capsys.readouterr().err
    assert "job: 1/2 parts" in err and "first" in err and "second" in err
    assert "job: 2/2 parts" in err


def test_part_bar_off_prints_nothing_and_an_error_passes_through(capsys):
    with pytest.raises(ZeroDivisionError):
        with PartBar(1, "job", progress=False) as part:
            part("boom", lambda: 1 / 0)
    assert capsys.readouterr().err == ""
