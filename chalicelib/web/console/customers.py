"""Customers (directory:manage): find a customer by name, email or phone; a customer's page."""
from chalice import Response

from chalicelib.web.console.shell import Console, console_page

DIRECTORY = "directory:manage"


@console_page("/console/customers", DIRECTORY, form=False)
def customers(c: Console) -> Response:
    """The customer search."""
    return c.html("console/customers.html", title="Customers")
