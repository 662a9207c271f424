"""The streams use cases' dependencies, as the routes take them."""

from typing import Annotated

from fastapi import Depends

from chassis.routes import use_case_deps
from services.streams.provider_settings import Deps

DepsDep = Annotated[Deps, Depends(use_case_deps)]
