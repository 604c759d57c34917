"""The service API /api/v1 (SPEC §4.8): JSON, client_credentials tokens with scopes, RFC 9457 errors."""
