"""The package surface: every exception class is a ``ChatError`` (and the docs list them),
``__version__``, ``py.typed`` and the top-level names."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import chatclient
from chatclient.errors import ChatError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "client.md"


def library_errors() -> dict[str, type[BaseException]]:
    """Every exception class defined in a module of ``chatclient``, by name."""
    found = {}
    for info in pkgutil.iter_modules(chatclient.__path__, "chatclient."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__.startswith("chatclient")
            ):
                found[name] = value
    return found


def documented_errors() -> set[str]:
    """The names in the first column of the table under "### Errors" in docs/client.md."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("### Errors", 1)[1].split("\n### ", 1)[0]
    names = set()
    for row in re.findall(r"^\| (`.+?) \|", section, re.MULTILINE):
        names.update(re.findall(r"`([A-Z][A-Za-z]+)", row))
    return names


def test_except_chat_error_catches_every_library_error():
    errors = library_errors()
    assert {"ProtocolError", "KeystoreError", "WrongPassphrase", "DeviceRevoked"} <= set(errors)
    assert {"MessageTooLong", "RateLimited", "FileRefused", "SocketClosed"} <= set(errors)
    documented = documented_errors()
    assert documented <= set(errors), documented - set(errors)
    internal = {"ChatError", "OpenError", "RosterError", "CliError"}  # the base; inner ones
    assert set(errors) - internal <= documented, set(errors) - internal - documented
    for name, cls in errors.items():
        try:
            raise cls.__new__(cls)
        except ChatError as caught:
            assert type(caught) is cls, name
        assert getattr(chatclient, name, cls) is cls  # exported ones are the same class


def test_package_surface():
    import chatclient as package

    assert isinstance(package.__version__, str) and package.__version__
    assert (Path(package.__file__).parent / "py.typed").is_file()
    assert set(package.__all__) == {"__version__", *package._EXPORTS}
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    from chatclient import ChatClient, ChatError, connect  # noqa: F401
