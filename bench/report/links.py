"""Where a plugin's row links to: the home page its installed distribution declares, or nowhere.

Result records hold only the distribution's name and version, so the address is read at render time from the
distribution's installed metadata (``Project-URL``, else ``Home-page``). Nothing is guessed: a distribution
that is not installed, declares no address or declares one that is not https gets no link.
"""

from __future__ import annotations

from importlib import metadata

# the labels of Project-URL entries, in the order they are preferred (compared without case or punctuation)
_PREFERRED = ("homepage", "home", "source", "sourcecode", "repository", "code", "documentation", "docs")


def _key(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def _https(url: str) -> str | None:
    url = url.strip()
    # an address only: no quote, space or angle bracket can reach the page, and no other scheme is followed
    return url if url.startswith("https://") and not any(c in url for c in ' "\'<>\\`') else None


def distribution_url(distribution: str) -> str | None:
    """The https home page of the installed ``distribution``, or None."""
    if not distribution or "," in distribution:  # rows joined from several distributions link to none of them
        return None
    try:
        meta = metadata.metadata(distribution)
    except (metadata.PackageNotFoundError, ValueError):
        return None
    entries = []
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if _https(url):
            entries.append((_key(label), _https(url)))
    for wanted in _PREFERRED:
        for label, url in entries:
            if label == wanted:
                return url
    if entries:
        return entries[0][1]
    return _https(meta.get("Home-page") or "")
