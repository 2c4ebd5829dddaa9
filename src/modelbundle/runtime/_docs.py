"""Swagger UI from the files of the ``swagger-ui-bundle-v2`` package: no CDN, works offline.

The document is OpenAPI 3.1, which only Swagger UI 5 renders (4.x shows "Unable to render
this definition"). ``swagger-ui-bundle-v2`` ships Swagger UI 5 under the same
``swagger_ui_bundle`` module as the 1.x series did (4.15), with the same one dependency
(jinja2): docs/dev/packaging.md says why it was chosen. tests/runtime/test_docs_browser.py
checks the page in headless Chromium.
"""

from __future__ import annotations

import html

import swagger_ui_bundle

STATIC_DIR = swagger_ui_bundle.swagger_ui_path
STATIC_PREFIX = "/docs/static"


def docs_html(title: str, openapi_url: str = "/openapi.json") -> str:
    title = html.escape(title)
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} - API docs</title>
  <link rel="stylesheet" href="{STATIC_PREFIX}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{STATIC_PREFIX}/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{STATIC_PREFIX}/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{url: "{openapi_url}", dom_id: "#swagger-ui", deepLinking: true,
      validatorUrl: null, presets: [SwaggerUIBundle.presets.apis]}});
  </script>
</body>
</html>
"""
