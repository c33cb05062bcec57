"""Brand baselines and domain context (engine.brands, engine.domains): a match against a brand's
baseline from another registrable domain is phishing-suspected, from the brand's own legitimate.

Registrable domains as PyMISP 2.5.34.4 computes a URL's domain (pymisp/tools/_psl_faup.py:
``PublicSuffixList.privatesuffix``, list bundled with publicsuffixlist 1.1.2). The HTTP side
(routes, OpenAPI) is in tests/test_openapi_contract.py.
"""

from __future__ import annotations

import io
import json

import pytest

from engine.brands import BrandRegistry
from engine.cli import main
from engine.domains import host_of, registrable_domain
from engine.errors import BadInput
from engine.validation import check_metadata
from tests.test_hash_search import exchanged
from tests.test_orb import site_page


def png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(("value", "domain"), [
    ("https://login.paypal.com/signin?x=1", "paypal.com"),
    ("paypal.com.evil.tld", "evil.tld"),  # the brand's name in front of someone else's domain
    ("https://paypal.com@evil.example/", "evil.example"),  # user info is not the host
    ("secure.paypal.co.uk", "paypal.co.uk"),  # two-label public suffix
    ("someone.github.io", "someone.github.io"),  # private suffix: GitHub does not own it
    ("PAYPAL.COM.", "paypal.com"),
    ("http://[2001:db8::1]:8080/", "2001:db8::1"),
    ("https://bücher.de/", "xn--bcher-kva.de"),
])
def test_registrable_domains(value, domain):
    assert registrable_domain(value) == domain


@pytest.mark.parametrize("value", ["", "   ", "http://", "exa mple.com", "-bad.example", "a" * 64 + ".com"])
def test_a_value_without_a_valid_host_is_refused(value):
    with pytest.raises(BadInput):
        host_of(value)


def test_metadata_refuses_a_brand_or_domain_a_search_could_not_judge():
    assert check_metadata({"brand": "Acme", "domain": "https://acme.example/x"})["brand"] == "Acme"
    for bad in ({"brand": ""}, {"brand": 3}, {"brand": "x" * 101}, {"brand": "A/B"},
                {"domain": "no host here/"}, {"domain": ["acme.example"]}):
        with pytest.raises(BadInput):
            check_metadata(bad)


def test_registry_keeps_registrable_domains_per_brand_case_insensitively(redis):
    registry = BrandRegistry(redis)
    assert registry.set("PayPal", ["https://www.paypal.com/", "paypal.co.uk", "login.paypal.com"]) == {
        "name": "PayPal", "domains": ["paypal.co.uk", "paypal.com"]}
    assert registry.get("paypal")["domains"] == ["paypal.co.uk", "paypal.com"]
    assert registry.domains_of(["PAYPAL", "Other"]) == {"paypal": ("paypal.co.uk", "paypal.com"), "other": ()}
    with pytest.raises(BadInput):
        registry.set("PayPal", ["not a domain"])
    assert registry.get("PayPal")["domains"] == ["paypal.co.uk", "paypal.com"]  # a refused set: no change
    assert [b["name"] for b in registry.all()] == ["PayPal"]
    assert registry.delete("PAYPAL") and registry.get("PayPal") is None and not registry.delete("PayPal")


@pytest.fixture
def baseline(quaid):
    """A brand's login page stored as its baseline, captured on its own site."""
    page = png(site_page(11))
    added = quaid.add(page, name="acme-login", metadata={"brand": "Acme", "domain": "https://www.acme.example/"})
    return page, added.id


def test_the_baseline_on_another_domain_is_phishing_suspected(quaid, baseline):
    page, ident = baseline
    for elsewhere in ("https://acme.example.evil.test/login", "acme-example.test", "acme.github.io"):
        answer = quaid.search(page, domain=elsewhere).to_json()
        assert answer["matches"][0]["id"] == ident and answer["matches"][0]["decision"] == "accepted"
        assert answer["matches"][0]["verdict"] == "phishing-suspected"
        assert answer["verdict"] == "phishing-suspected"
        assert answer["brand"] == {"name": "Acme", "domains": ["acme.example"], "match": ident}
        assert answer["domains"] == [registrable_domain(elsewhere)]


def test_the_baseline_on_the_brands_own_domains_is_legitimate(quaid, baseline):
    page, ident = baseline
    assert quaid.search(page, domain="https://login.acme.example/x").to_json()["verdict"] == "legitimate"
    assert quaid.search(page, domain="acme-bank.test").to_json()["verdict"] == "phishing-suspected"
    quaid.brands.set("ACME", ["acme-bank.test"])  # a configured domain of the brand, any case of its name
    answer = quaid.search(page, domain="www.acme-bank.test").to_json()
    assert answer["verdict"] == "legitimate" and answer["matches"][0]["verdict"] == "legitimate"
    assert answer["brand"]["domains"] == ["acme-bank.test", "acme.example"]


def test_several_domains_are_legitimate_only_when_each_is_the_brands(quaid, baseline):
    """A redirect chain through the brand's site that ends elsewhere is no proof of legitimacy."""
    page, _ = baseline
    quaid.brands.set("Acme", ["acme-bank.test"])
    own = quaid.search(page, domain=["https://acme.example/a", "login.acme-bank.test", "acme.example"])
    assert own.to_json()["verdict"] == "legitimate" and own.domains == ("acme-bank.test", "acme.example")
    chain = quaid.search(page, domain=["https://acme.example/redirect", "https://evil.test/login"]).to_json()
    assert chain["verdict"] == "phishing-suspected" and chain["domains"] == ["acme.example", "evil.test"]
    with pytest.raises(BadInput):
        quaid.search(page, domain=["acme.example", "no host/"])
    with pytest.raises(BadInput):
        quaid.search(page, domain=[f"h{i}.test" for i in range(51)])


def test_a_partners_hash_with_its_url_gets_the_same_verdict_at_best_to_review(quaid, baseline):
    """cert-pl-phishing shares a page's pHash with its URL: no picture, yet the brand verdict."""
    page, ident = baseline
    hashes = {"phash_dct_base64": exchanged(page)["phash_dct_base64"]}
    answer = quaid.search_hashes(hashes, domain="https://acme.example.evil.test/")
    match = next(m for m in answer["matches"] if m["id"] == ident)
    assert match["decision"] == "to-review" and match["verdict"] == "phishing-suspected"
    assert answer["verdict"] == "phishing-suspected" and answer["domains"] == ["evil.test"]
    assert quaid.search_hashes(hashes, domain="login.acme.example")["verdict"] == "legitimate"
    unnamed = quaid.search_hashes(hashes)
    assert "verdict" not in unnamed and "brand" in unnamed["matches"][0]


def test_no_domain_no_verdict_and_the_answer_keeps_its_shape(quaid, baseline):
    page, _ = baseline
    plain = png(site_page(12, heading="Release notes"))
    quaid.add(plain, name="not-a-brand")
    answer = quaid.search(page).to_json()
    assert "verdict" not in answer and "domains" not in answer and "brand" not in answer
    assert answer["matches"][0]["brand"]["name"] == "Acme" and "verdict" not in answer["matches"][0]
    other = quaid.search(plain, domain="anything.test").to_json()
    assert other["matches"][0]["name"] == "not-a-brand"
    assert "brand" not in other["matches"][0] and "verdict" not in other  # not a baseline: nothing added
    assert set(other) == {"decision", "matches", "domains"}


def test_a_brand_with_no_known_domain_gets_no_verdict(quaid):
    page = png(site_page(13))
    quaid.add(page, metadata={"brand": "Nodomain"})
    answer = quaid.search(page, domain="evil.test").to_json()
    assert answer["matches"][0]["brand"] == {"name": "Nodomain", "domains": []}
    assert "verdict" not in answer["matches"][0] and "verdict" not in answer


def test_a_rejected_candidate_says_nothing_about_the_query(quaid, baseline):
    _, ident = baseline
    unrelated = png(site_page(14, heading="Completely different article"))
    answer = quaid.search(unrelated, include_rejected=True, domain="evil.test").to_json()
    candidate = next(m for m in answer["matches"] if m["id"] == ident)
    assert candidate["decision"] == "rejected"  # listed (--all) but another page
    assert "brand" not in candidate and "verdict" not in candidate and "verdict" not in answer


def test_a_bad_query_domain_is_refused_before_searching(quaid, baseline):
    page, _ = baseline
    with pytest.raises(BadInput):
        quaid.search(page, domain="http://")


def test_cli_brand_baseline_and_search_with_domain(local_store, tmp_path, capsys):
    path = tmp_path / "bank.png"
    path.write_bytes(png(site_page(15)))
    assert main(["add", str(path), "--brand", "Example Bank", "--domain", "examplebank.test"]) == 0
    assert main(["brand", "set", "Example Bank", "examplebank-online.test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["domains"] == ["examplebank-online.test"]
    phishing_site = "https://examplebank.test.login-verify.test/"
    assert main(["search", str(path), "--domain", phishing_site, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["verdict"] == "phishing-suspected" and answer["brand"]["name"] == "Example Bank"
    assert main(["search", str(path), "--domain", "online.examplebank-online.test"]) == 0
    assert "[legitimate: Example Bank on examplebank-online.test]" in capsys.readouterr().out
    assert main(["brand", "list"]) == 0
    assert capsys.readouterr().out.strip() == "Example Bank: examplebank-online.test"
    assert main(["search", str(path), "--domain", "no host/"]) == 2
    assert main(["add", str(path), "--domain", "http://"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("quaid ") for line in err)
    assert main(["brand", "delete", "example bank"]) == 0
    assert main(["brand", "show", "Example Bank"]) == 2
