"""The pages' HTML: Jinja2 templates under templates/pages/, autoescaped (a business name or an email address is
always text, never markup), with StrictUndefined (a value a template needs and does not get is an error, not a
blank); and the addresses the pages link to.

    layout.html   every page: the business, the section, the content, the footer
    forms.html    the macros forms are made of: fields, password rules, choices, error summary, CSRF, buttons
    form.html     a page that is one form posting back to itself (portal/*.html and staff/*.html extend it)
    lookup.html   the "which business?" form
    message.html  a page that says something and offers the way on
"""
import urllib.parse
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from chalicelib.core import config
from chalicelib.core.security.passwords import POLICY_TEXT

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
ASSETS = TEMPLATES / "pages"
CSS_PATH = "/assets/pages.css"
JS_PATH = "/assets/pages.js"
ICON_PATH = "/favicon.ico"  # an SVG (image/svg+xml): what browsers ask for, and what the layout links


@lru_cache(maxsize=1)
def environment() -> "jinja2.Environment":
    """Made on the first page (an API request never imports Jinja2)."""
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             finalize=lambda value: "" if value is None else value)  # None: nothing to say
    env.globals.update(url=url, CSS_PATH=CSS_PATH, JS_PATH=JS_PATH, ICON_PATH=ICON_PATH, PASSWORD_RULES=POLICY_TEXT)
    return env


def render(template: str, /, **values) -> str:
    """templates/<template> filled with `values` (escaped, unless a template marks them safe)."""
    return environment().get_template(template).render(values)


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    """A static file of the pages (stylesheet, script, icon), read once."""
    return (ASSETS / name).read_text()


def base_path() -> str:
    """The path part of the public base URL ("" on a custom domain, "/api" on a bare API Gateway stage)."""
    return urllib.parse.urlparse(config.public_base_url()).path.rstrip("/")


def secure() -> bool:
    return config.public_base_url().startswith("https://")


def url(path: str, **query) -> str:
    query = {k: v for k, v in query.items() if v is not None}
    return base_path() + path + ("?" + urllib.parse.urlencode(query) if query else "")
