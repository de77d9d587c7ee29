"""/api/schema/ and /api/docs/: the OpenAPI document, and Swagger UI served from our own static files
(the site runs with no network, so nothing may come from a CDN)."""

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_the_schema_describes_every_endpoint(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    for path in ("/api/paintings/", "/api/paintings/{id}/", "/api/predictions/", "/api/model-versions/"):
        assert f"{path}:" in text


def test_the_schema_offers_a_file_picker_for_uploads(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()
    upload = schema["paths"]["/api/paintings/"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[-1]
    image = schema["components"]["schemas"][form]["properties"]["image"]
    assert image == {"type": "string", "format": "binary", "writeOnly": True}
    assert {"200", "201", "400"} <= set(upload["responses"])
    # only the upload may change anything
    assert set(schema["paths"]["/api/paintings/{id}/"]) == {"get"}


def test_the_docs_page_loads_swagger_ui_from_our_own_static_files(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    # no absolute or protocol-relative address anywhere: every asset is ours
    assert not re.search(r"https?://", html)
    assert not re.search(r"""(src|href)\s*=\s*["']?//""", html)
    assets = re.findall(r"""(?:src|href)="/static/([^"]+)\"""", html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert finders.find(asset), f"{asset} is not among the static files"
