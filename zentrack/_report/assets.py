"""The report's page template, stylesheet and script, and the policy that lets only them run.

They live as package data (``static/report.html``, ``report.css``,
``report.js``) so each is read, linted and diffed as the language it is; this
module reads them once, on first use of the report.  The script reads the
JSON blob the page carries (see :mod:`zentrack._report.html`) and builds
everything with DOM calls: data never goes through ``innerHTML``.

Every page zentrack makes carries a Content-Security-Policy that allows its
own inline script and stylesheet by their SHA-256 digests and nothing else:
no other script, no inline event handler, no network request of any kind.
Escaping is what keeps values from becoming markup; the policy is the second
wall, should a value ever get past the first.
"""

from __future__ import annotations

import base64
import hashlib
from importlib.resources import files
from typing import Final


def read(name: str) -> str:
    """The text of ``static/<name>``, shipped with the package."""
    return files("zentrack._report").joinpath("static", name).read_text(encoding="utf-8")


#: The page; ``str.format`` fields: title, summary, generated, policy, css, data, js.
PAGE: Final = read("report.html")
CSS: Final = read("report.css")
#: The script: reads the JSON blob, builds the views, wires sorting, brushing and hovering.
JS: Final = read("report.js")


def digest(text: str) -> str:
    """A CSP source allowing the inline ``<script>``/``<style>`` whose content is ``text``."""
    value = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return f"'sha256-{value}'"


def policy(scripts: tuple[str, ...] = (), styles: tuple[str, ...] = ()) -> str:
    """The Content-Security-Policy of a page whose only code is these inline blocks.

    Nothing may be fetched (``default-src 'none'``, no ``connect-src``) and
    forms may only submit to the page's own origin.  (``frame-ancestors`` is
    left to the viewer's header: a ``<meta>`` policy cannot carry it.)
    """
    script = " ".join(digest(s) for s in scripts) or "'none'"
    style = " ".join(digest(s) for s in styles) or "'none'"
    return (
        f"default-src 'none'; script-src {script}; style-src {style}; img-src data:; "
        "base-uri 'none'; form-action 'self'"
    )


#: The report's own policy (also sent as a header by ``zentrack ui``).
REPORT_POLICY: Final = policy((JS,), (CSS,))
