from typing import Annotated

from fastapi import Depends, Request

from rapport.identity.service import Security


def get_security(request: Request) -> Security:
    return request.app.state.security


SecurityDep = Annotated[Security, Depends(get_security)]
