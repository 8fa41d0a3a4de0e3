"""The HTML page links a row to its plugin distribution's declared home page (installed metadata), or not at
all: no path into the repository, no guessed package index page."""

from __future__ import annotations

from email.message import Message
from importlib import metadata

from bench.report.html import render_html
from bench.report.links import distribution_url
from bench.report.model import from_folders
from test_leaderboard import write_series


def _meta(project_urls=(), home=None) -> Message:
    m = Message()
    for entry in project_urls:
        m["Project-URL"] = entry
    if home:
        m["Home-page"] = home
    return m


def test_the_declared_home_page_is_preferred_and_only_https_is_followed(monkeypatch):
    fake = {
        "plain": _meta(["Documentation, https://docs.example/p", "Homepage, https://example.org/p"]),
        "source-only": _meta(["Bug Tracker, https://example.org/issues", "Source Code, https://git.example/p"]),
        "old-style": _meta(home="https://old.example/p"),
        "insecure": _meta(["Homepage, http://example.org/p"], home="javascript:alert(1)"),
        "quoted": _meta(['Homepage, https://example.org/"><script>']),
        "none": _meta(),
    }

    def metadata_of(name):
        if name not in fake:
            raise metadata.PackageNotFoundError(name)
        return fake[name]

    monkeypatch.setattr(metadata, "metadata", metadata_of)
    assert distribution_url("plain") == "https://example.org/p"
    assert distribution_url("source-only") == "https://git.example/p"
    assert distribution_url("old-style") == "https://old.example/p"
    for name in ("insecure", "quoted", "none", "not-installed", "plain, none", ""):
        assert distribution_url(name) is None, name


def test_the_page_links_an_installed_distribution_and_nothing_else(tmp_path):
    real = metadata.metadata("rich")  # installed with the bench; it declares its home page
    expected = distribution_url("rich")
    assert expected and expected.startswith("https://") and expected in " ".join(real.get_all("Project-URL") or [])
    write_series(tmp_path, "identity", [0.0, 0.0, 0.0])  # the built-ins: earlyphase-bench declares no address
    write_series(tmp_path, "noise", [1.0, 2.0, 3.0], dist="rich")
    write_series(tmp_path, "other", [2.0, 2.0, 4.0], dist="not-installed-anywhere")
    page = render_html(from_folders([tmp_path]))
    assert page.count("<a ") == 1 and f'<a href="{expected}">noise</a>' in page
    assert '<span class="name">identity</span>' in page
    assert "../plugins/" not in page and "pypi.org" not in page
