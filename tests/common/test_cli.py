import pytest

from common.cli import OneLineParser, print_error


@pytest.mark.parametrize("name_errors, expected", [(True, "prog: error: "), (False, "error: ")])
def test_parser_errors_are_one_line_with_exit_code_2(capsys, name_errors, expected):
    parser = OneLineParser(prog="prog", name_errors=name_errors)
    parser.add_argument("--n", type=int)
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--n", "x"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.startswith(expected) and "--n" in err and err.count("\n") == 1 and "usage" not in err


def test_print_error_returns_2(capsys):
    assert print_error("bad thing", "tool") == 2
    assert capsys.readouterr().err == "tool: error: bad thing\n"
