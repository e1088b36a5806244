from tests.support.osmem import fresh_index, search_proxy, search_url  # noqa: F401
