"""The building blocks of the request schemas each flow declares beside itself (one-line text: text.py)."""
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints


class Shape(BaseModel):
    """Every request and response shape of the API. Its validator and serializer are built when first used, not at
    import: a cold start would otherwise build all of them (over a hundred, ~50 ms), and a call uses one or two."""
    model_config = ConfigDict(defer_build=True)


class Strict(Shape):
    """A request body: unknown fields are refused, text is trimmed (a pasted email's trailing space)."""
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# A password is kept exactly as typed, spaces included, in every body that carries one: trimming it in one place
# and not another would lock the person out of the password they chose.
Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=1024)]
