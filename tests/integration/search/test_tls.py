"""TLS to the index is verified: osmem-server behind a TLS-terminating proxy whose
certificate a throwaway CA signed; refused without that CA, used with
DEPOSIT_SEARCH_CA_FILE."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from deposit_services.errors import SearchUnavailable
from deposit_services.search.elastic import ElasticIndex
from tests.support.ftp_server import make_certificates
from tests.support.tcp_proxy import TcpProxy


def test_the_index_certificate_is_verified(search_url: str, fresh_index: str,
                                           tmp_path: Path) -> None:
    ca, server_pem = make_certificates(tmp_path / "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_pem)
    host, _, port = search_url.removeprefix("http://").partition(":")
    with TcpProxy(host, int(port), tls=context) as proxy:
        url = f"https://127.0.0.1:{proxy.port}"
        untrusted = ElasticIndex(url, fresh_index, timeout=5)
        with pytest.raises(SearchUnavailable, match="DEPOSIT_SEARCH_CA_FILE"):
            untrusted.prepare()
        untrusted.close()
        trusted = ElasticIndex(url, fresh_index, ca_file=str(ca), timeout=5)
        trusted.prepare()
        trusted.write([{"_id": "Deposit:1", "@id": "1", "@type": "Deposit",
                        "depositStatus": "ACCEPTED"}], refresh=True)
        assert trusted.search("depositStatus:ACCEPTED").total == 1
        trusted.close()
