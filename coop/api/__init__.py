"""The GraphQL API (strawberry): schema, transport, limits and error mapping."""
