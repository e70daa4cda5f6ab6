from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token authentication with the standard ``Authorization: Bearer <token>`` header."""

    keyword = "Bearer"
